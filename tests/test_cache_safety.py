"""Safety of the cache: injection, crashes, concurrent writers, corruption, escaping names.

Crashes and concurrency use real processes (``subprocess``); corruption is done to the
files on disk with plain file I/O.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from astropy.io import fits
from crds.core import rmap
from typer.testing import CliRunner

from dqref import DQModel
from dqref.cache import mappings
from dqref.cache.local_cache import CacheError, LocalCache
from dqref.cache.mappings import MappingValueError, MatchRule, UseAfterEntry
from dqref.cli import app
from dqref.errors import InvalidReferenceError
from dqref.reffile import to_hdulist

runner = CliRunner()
# A real process that adds a reference; with a third argument it dies (os._exit, like a kill)
# right after that publish step, through the cache's injected on_publish_step hook.
ADD = """
import os, sys
from dqref.cache.local_cache import LocalCache
crash_after = sys.argv[3] if len(sys.argv) > 3 else None
def die_there(step):
    if step == crash_after:
        os._exit(97)
LocalCache(sys.argv[1], on_publish_step=die_there).add(sys.argv[2])
"""
RMAP = "ligeriri_iris_dq_0001.rmap"


def observation(detector="IRIS1", date="2026-01-01", subarray="FULL") -> dict:
    return {"INSTRUME": "IRIS", "DETECTOR": detector, "SUBARRAY": subarray,
            "DATE-OBS": date, "TIME-OBS": "00:00:00"}


def add_in_another_process(cache_root, reference, crash_after=None) -> subprocess.Popen:
    """Start ``LocalCache(cache_root).add(reference)`` in a new Python process."""
    extra = [crash_after] if crash_after else []
    return subprocess.Popen([sys.executable, "-c", ADD, str(cache_root), str(reference), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def rule(detector="IRIS1", subarray="N/A", useafter="2020-01-01 00:00:00",
         reference="iris_dq_0001.fits") -> MatchRule:
    return MatchRule(detector, subarray, (UseAfterEntry(useafter, reference),))


# -- injection ----------------------------------------------------------------------------
@pytest.mark.parametrize("detector", ["IRIS1'), ('X", "IRIS1\nimport os", "IRIS1' : 'x",
                                      "__import__('os')", "IRIS1\"", ""])
def test_a_detector_that_could_break_out_of_the_rmap_is_refused(detector):
    with pytest.raises(MappingValueError, match="detector .* may only contain letters, digits"):
        mappings.render_rmap(RMAP, "IRIS", [rule(detector=detector)], "test")


@pytest.mark.parametrize("subarray", ["SUB64'), ('X", "SUB 64", "N/A'"])
def test_a_subarray_that_could_break_out_of_the_rmap_is_refused(subarray):
    with pytest.raises(MappingValueError, match="subarray"):
        mappings.render_rmap(RMAP, "IRIS", [rule(subarray=subarray)], "test")


@pytest.mark.parametrize("useafter", ["2020-01-01 00:00:00' : 'x", "2020-01-01",
                                      "2020-01-01T00:00:00", "2020-01-01 00:00:00\nimport os"])
def test_a_useafter_not_in_crds_format_is_refused(useafter):
    with pytest.raises(MappingValueError, match="USEAFTER .* is not 'YYYY-MM-DD HH:MM:SS'"):
        mappings.render_rmap(RMAP, "IRIS", [rule(useafter=useafter)], "test")


def test_an_impossible_useafter_date_is_a_mapping_value_error():
    with pytest.raises(MappingValueError):
        mappings.render_rmap(RMAP, "IRIS", [rule(useafter="2020-13-01 00:00:00")], "test")


@pytest.mark.parametrize("reference", ["../x.fits", "iris_dq_0001.fits' : 'x",
                                       "/etc/passwd", "nircam_dq_0001.fits", "iris_flat.fits"])
def test_a_reference_name_outside_the_naming_rule_is_refused(reference):
    with pytest.raises(MappingValueError, match="not a valid file name for this cache|"
                                                "not a ligeriri reference|not dq"):
        mappings.render_rmap(RMAP, "IRIS", [rule(reference=reference)], "test")


def test_a_mapping_name_outside_the_naming_rule_is_refused():
    with pytest.raises(MappingValueError, match="rmap name .* is not a valid file name"):
        mappings.render_rmap("ligeriri_iris_dq_0001.rmap'; import os", "IRIS", [rule()], "t")
    with pytest.raises(MappingValueError, match="imap name"):
        mappings.render_pmap("ligeriri_0002.pmap", {"IRIS": "../evil.imap"}, "t")


@pytest.mark.parametrize("bad", [rule(detector="IRIS1\n"), rule(useafter="2020-01-01 00:00:00\n"),
                                 rule(reference="iris_dq_0001.fits\n")],
                         ids=["detector", "useafter", "reference"])
def test_a_value_with_a_trailing_newline_is_refused(bad):
    with pytest.raises(MappingValueError):
        mappings.render_rmap(RMAP, "IRIS", [bad], "test")


def test_free_text_is_rendered_as_a_literal_and_loads_back():
    derived = "from 'x' : \"y\"\nimport os"
    text = mappings.render_rmap(RMAP, "IRIS", [rule()], derived)
    loaded = mappings.prove(text, RMAP)
    assert loaded.header["derived_from"] == derived
    assert loaded.reference_names() == ["iris_dq_0001.fits"]


def _crafted(model_path, target, keyword, value):
    """Rewrite a reference with one primary keyword replaced (checksums made valid again)."""
    hdulist = to_hdulist(DQModel.read(model_path))
    hdulist[0].header[keyword] = value
    hdulist.writeto(target, checksum=True)
    return target


@pytest.mark.parametrize(("keyword", "value", "words"), [
    ("DETECTOR", "IRIS1'), ('X", "DETECTOR: detector \"IRIS1'), ('X\" may only contain"),
    ("SUBARRAY", "FULL') : 'x", "SUBARRAY: subarray"),
    ("USEAFTER", "2020-01-01 00:00:00' : 'x", "USEAFTER: \"2020-01-01 00:00:00' : 'x\" is not "
                                              "an ISO date-time"),
])
def test_a_crafted_reference_is_refused_by_add_and_nothing_is_published(
        empty_cache, make_reference, tmp_path, snapshot_cache, keyword, value, words):
    source = make_reference(tmp_path / "small.fits", subarray=("SUB64", 1, 1, 64))
    crafted = _crafted(source, tmp_path / "crafted.fits", keyword, value)
    before = snapshot_cache(empty_cache)
    with pytest.raises(InvalidReferenceError) as raised:
        empty_cache.add(crafted)
    assert words in str(raised.value)
    assert snapshot_cache(empty_cache) == before


# -- names cannot escape the cache ---------------------------------------------------------
@pytest.mark.parametrize("name", ["../x.fits", "iris_dq_0001.fits/../../x",
                                  "../../iris_dq_0001.fits", "/tmp/iris_dq_0001.fits",
                                  "nircam_dq_0001.fits", "dq_0001.fits", "iris_dq_0001.fits\n"])
def test_reference_path_refuses_names_that_could_escape_the_cache(tmp_path, name):
    with pytest.raises(CacheError, match="is not a valid reference name for this cache"):
        LocalCache(tmp_path).reference_path(name)


def test_reference_path_of_a_valid_name_is_inside_the_instrument_folder(tmp_path):
    cache = LocalCache(tmp_path)
    assert cache.reference_path("liger_dq_0012.fits") == \
        tmp_path.resolve() / "references/ligeriri/liger/liger_dq_0012.fits"


# -- concurrent writers -------------------------------------------------------------------------
def test_two_concurrent_adds_both_land_with_distinct_serials(empty_cache, three_references):
    iris1, _, iris2 = three_references
    processes = [add_in_another_process(empty_cache.root, iris1),
                 add_in_another_process(empty_cache.root, iris2)]
    outcomes = [p.communicate(timeout=180) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outcomes
    fresh = LocalCache(empty_cache.root)
    assert fresh.current_context == "ligeriri_0003.pmap"
    assert sorted(r.reference for r in fresh.rules()) == ["iris_dq_0001.fits",
                                                          "iris_dq_0002.fits"]
    assert {r.detector for r in fresh.rules()} == {"IMG1", "IMG2"}  # canonical names
    assert fresh.bestref(observation("IRIS1")).found and fresh.bestref(observation("IRIS2")).found
    for path in fresh.mapping_dir.glob("*.?map"):
        rmap.load_mapping(path.name, path=str(fresh.mapping_dir))
    assert fresh.verify() == []
    assert not list(fresh.root.rglob("*.tmp"))


# -- crashes ----------------------------------------------------------------------------------
@pytest.fixture
def one_registered(empty_cache, three_references):
    """A cache with the IRIS1 2020 reference registered (context ligeriri_0002.pmap)."""
    empty_cache.add(three_references[0])
    return empty_cache


@pytest.mark.parametrize(("step", "after_retry"), [
    ("reference", ("iris_dq_0003.fits", "ligeriri_iris_dq_0002.rmap", "ligeriri_iris_0003.imap",
                   "ligeriri_0003.pmap")),
    ("rmap", ("iris_dq_0003.fits", "ligeriri_iris_dq_0003.rmap", "ligeriri_iris_0003.imap",
              "ligeriri_0003.pmap")),
    ("imap", ("iris_dq_0003.fits", "ligeriri_iris_dq_0003.rmap", "ligeriri_iris_0004.imap",
              "ligeriri_0003.pmap")),
    ("pmap", ("iris_dq_0003.fits", "ligeriri_iris_dq_0003.rmap", "ligeriri_iris_0004.imap",
              "ligeriri_0004.pmap")),
])
def test_a_crash_at_any_step_leaves_the_previous_context_and_a_retry_uses_fresh_names(
        one_registered, three_references, snapshot_cache, step, after_retry):
    cache = one_registered
    later = observation("IRIS1", "2026-01-01")
    crashed = add_in_another_process(cache.root, three_references[1], crash_after=step)
    crashed.communicate(timeout=180)
    assert crashed.returncode == 97

    fresh = LocalCache(cache.root)
    assert fresh.current_context == "ligeriri_0002.pmap"
    assert fresh.bestref(later).reference == "iris_dq_0001.fits"
    assert fresh.verify() == []
    assert not list(fresh.root.rglob("*.tmp"))

    before_retry = snapshot_cache(fresh)
    result = fresh.add(three_references[1])
    assert (result.reference.name, result.rmap, result.imap, result.context) == after_retry
    assert fresh.current_context == after_retry[-1]
    assert fresh.bestref(later).reference == after_retry[0]
    after = snapshot_cache(fresh)
    changed = [name for name, state in before_retry.items() if after[name] != state]
    assert changed == ["config/ligeriri/server_config"]  # only the context pointer moves
    assert fresh.verify() == []


# -- corruption --------------------------------------------------------------------------------
@pytest.fixture
def corrupted_rmap_cache(registered_cache_copy):
    """The registered cache with one character changed in the current context's rmap."""
    path = registered_cache_copy.mapping_dir / "ligeriri_iris_dq_0003.rmap"
    path.write_text(path.read_text().replace("iris_dq_0001.fits", "iris_dq_0002.fits", 1))
    return registered_cache_copy


def test_a_changed_character_in_an_rmap_makes_bestref_name_the_file(corrupted_rmap_cache):
    with pytest.raises(CacheError, match="cannot load context ligeriri_0004.pmap: sha1sum "
                                         "mismatch in 'ligeriri_iris_dq_0003.rmap'"):
        LocalCache(corrupted_rmap_cache.root).bestref(observation())


def test_garbage_appended_to_an_rmap_makes_bestref_name_the_file(registered_cache_copy):
    path = registered_cache_copy.mapping_dir / "ligeriri_iris_dq_0003.rmap"
    with open(path, "a") as handle:
        handle.write("import os; os.system('true')\n")
    with pytest.raises(CacheError, match="ligeriri_iris_dq_0003.rmap"):
        LocalCache(registered_cache_copy.root).bestref(observation())


def test_verify_reports_a_corrupted_rmap(corrupted_rmap_cache):
    problems = LocalCache(corrupted_rmap_cache.root).verify()
    assert problems == [
        f"{corrupted_rmap_cache.mapping_dir / 'ligeriri_iris_dq_0003.rmap'}: "
        "ligeriri_iris_dq_0003.rmap: crds cannot load it: sha1sum mismatch in "
        "'ligeriri_iris_dq_0003.rmap'",
        "cannot load context ligeriri_0004.pmap: sha1sum mismatch in "
        "'ligeriri_iris_dq_0003.rmap'"]


def test_cli_verify_of_a_corrupted_cache_exits_1(corrupted_rmap_cache):
    result = runner.invoke(app, ["cache", "verify", "--path", str(corrupted_rmap_cache.root)])
    assert result.exit_code == 1
    assert "ligeriri_iris_dq_0003.rmap" in result.stdout
    assert "OK" not in result.stdout


def test_an_earlier_context_not_using_the_corrupted_rmap_still_works(corrupted_rmap_cache):
    fresh = LocalCache(corrupted_rmap_cache.root)
    assert fresh.bestref(observation(), context="ligeriri_0003.pmap").reference == \
        "iris_dq_0002.fits"


def test_add_refuses_to_build_on_a_corrupted_context(corrupted_rmap_cache, make_reference,
                                                     tmp_path):
    reference = make_reference(tmp_path / "iris3.fits", "IRIS3", subarray=("SUB64", 1, 1, 64))
    fresh = LocalCache(corrupted_rmap_cache.root)
    with pytest.raises(CacheError, match="ligeriri_iris_dq_0003.rmap"):
        fresh.add(reference)
    assert fresh.current_context == "ligeriri_0004.pmap"


def test_a_corrupted_server_config_is_a_cache_error(registered_cache_copy):
    (registered_cache_copy.config_dir / "server_config").write_text("{'operational_context':")
    with pytest.raises(CacheError, match="server_config: corrupted"):
        LocalCache(registered_cache_copy.root).bestref(observation())


def test_verify_reports_a_registered_reference_that_went_missing(registered_cache_copy):
    missing = registered_cache_copy.reference_path("iris_dq_0002.fits")
    missing.unlink()
    assert LocalCache(registered_cache_copy.root).verify() == [
        f"{missing}: named by ligeriri_0004.pmap but missing"]


def test_verify_reports_a_registered_reference_whose_bytes_changed(registered_cache_copy):
    path = registered_cache_copy.reference_path("iris_dq_0001.fits")
    data = bytearray(path.read_bytes())
    with fits.open(path) as hdulist:
        data[hdulist.fileinfo(1)["datLoc"] + 3] ^= 0x01
    path.write_bytes(bytes(data))
    problems = LocalCache(registered_cache_copy.root).verify()
    assert len(problems) == 1
    assert "iris_dq_0001.fits: checksum verification failed in DQ" in problems[0]
