"""The local CRDS cache: init, add, lookups by date and context, injection, refusals, CLI."""

from __future__ import annotations

import pytest
from crds.core import rmap
from support import cache_with, full_frame_reference, header, subarray_reference
from typer.testing import CliRunner

import rmaps
from dqref.cache import crds_adapter, mappings
from dqref.cache.local_cache import (
    CacheError,
    DuplicateReferenceError,
    LocalCache,
    SlotTakenError,
    default_cache_path,
)
from dqref.cli import app
from dqref.errors import InvalidReferenceError

runner = CliRunner()


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """Three references for two detectors and two dates, registered in that order."""
    folder = tmp_path_factory.mktemp("three")
    references = [
        full_frame_reference(folder / "a.fits", "IRIS1", "2020-01-01", {"DEAD": [(1, 1)]}),
        full_frame_reference(folder / "b.fits", "IRIS1", "2025-01-01", {"DEAD": [(2, 2)]}),
        full_frame_reference(folder / "c.fits", "IRIS2", "2020-01-01", {"HOT": [(3, 3)]}),
    ]
    cache = LocalCache(folder / "cache")
    cache.init()
    results = [cache.add(reference) for reference in references]
    return cache, results


def test_init_creates_the_initial_mapping_set_and_is_idempotent(tmp_path):
    cache = LocalCache(tmp_path / "c")
    assert cache.init() == "ligeriri_0001.pmap"
    assert cache.init() == "ligeriri_0001.pmap"
    assert sorted(p.name for p in cache.mapping_dir.iterdir()) == [
        "ligeriri_0001.pmap", "ligeriri_iris_0001.imap", "ligeriri_liger_0001.imap"]
    assert (tmp_path / "c" / "config" / "ligeriri" / "server_config").is_file()
    assert not cache.bestref(header()).found


def test_default_path_is_crds_path_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CRDS_PATH", str(tmp_path / "env"))
    assert default_cache_path() == tmp_path / "env"
    assert LocalCache().root == (tmp_path / "env").resolve()
    monkeypatch.delenv("CRDS_PATH")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_path() == tmp_path / "home" / "crds_cache"


def test_names_follow_the_seed_layout(three):
    cache, (first, second, third) = three
    assert first.reference == cache.root / "references/ligeriri/iris/iris_dq_0001.fits"
    assert (first.rmap, first.imap, first.context) == (
        "ligeriri_iris_dq_0001.rmap", "ligeriri_iris_0002.imap", "ligeriri_0002.pmap")
    assert third.context == "ligeriri_0004.pmap" == cache.current_context


@pytest.mark.parametrize(("detector", "date", "expected"), [
    ("IRIS1", "2019-06-01", None),
    ("IRIS1", "2021-06-01", "iris_dq_0001.fits"),
    ("IRIS1", "2025-01-01", "iris_dq_0002.fits"),
    ("IRIS1", "2030-01-01", "iris_dq_0002.fits"),
    ("IRIS2", "2030-01-01", "iris_dq_0003.fits"),
    ("IRIS3", "2030-01-01", None),
])
def test_bestref_before_between_and_after_the_dates(three, detector, date, expected):
    cache, _ = three
    answer = cache.bestref(header(detector, date))
    assert answer.reference == expected
    if expected is None:
        assert answer.reason  # crds's explanation
    else:
        assert answer.path == cache.reference_path(expected) and answer.path.is_file()


def test_stpipe_keys_select_like_fits_keywords_and_missing_subarray_means_full(three):
    cache, _ = three
    stpipe = {"META.INSTRUMENT.NAME": "IRIS", "META.INSTRUMENT.DETECTOR": "IRIS1",
              "META.SUBARRAY.NAME": "FULL", "META.OBSERVATION.DATE": "2021-06-01",
              "META.OBSERVATION.TIME": "12:00:00"}
    assert cache.bestref(stpipe).reference == "iris_dq_0001.fits"
    bare = header("IRIS1", "2021-06-01")
    del bare["SUBARRAY"]
    assert cache.bestref(bare).reference == "iris_dq_0001.fits"


def test_a_subarray_observation_selects_the_full_frame_reference(three):
    cache, _ = three
    assert cache.bestref(header("IRIS1", "2026-01-01", subarray="SUB256")).reference == \
        "iris_dq_0002.fits"


def test_an_earlier_context_still_gives_the_earlier_answer(three):
    cache, (first, second, _) = three
    after = header("IRIS1", "2026-01-01")
    assert cache.bestref(after, context=first.context).reference == "iris_dq_0001.fits"
    assert cache.bestref(after, context=second.context).reference == "iris_dq_0002.fits"
    assert cache.contexts() == [f"ligeriri_{n:04d}.pmap" for n in range(1, 5)]


def test_crds_getrecommendations_agrees_with_bestref(three):
    cache, _ = three
    for query in (header("IRIS1", "2021-06-01"), header("IRIS1", "2026-01-01"),
                  header("IRIS2", "2026-01-01")):
        assert crds_adapter.getrecommendations(cache.root, query) == \
            cache.bestref(query).reference


def test_every_published_mapping_loads_with_crds_checksums(three):
    cache, _ = three
    for path in sorted(cache.mapping_dir.glob("*.?map")):
        mapping = rmap.load_mapping(path.name, path=str(cache.mapping_dir))
        assert crds_adapter.with_checksum(path.read_text(), path.name) == path.read_text()
        assert mapping.header["sha1sum"] in path.read_text()
    assert cache.verify() == []


def test_rules_list_every_slot(three):
    cache, _ = three
    assert [(r.detector, r.subarray, r.useafter, r.reference) for r in cache.rules()] == [
        ("IMG1", "N/A", "2020-01-01 00:00:00", "iris_dq_0001.fits"),
        ("IMG1", "N/A", "2025-01-01 00:00:00", "iris_dq_0002.fits"),
        ("IMG2", "N/A", "2020-01-01 00:00:00", "iris_dq_0003.fits"),
    ]


def test_shipped_initial_mappings_equal_what_the_templates_render():
    why = "initial mapping set of dqref (no references yet)"
    for instrument in ("iris", "liger"):
        name = f"ligeriri_{instrument}_0001.imap"
        assert rmaps.INITIAL.joinpath(name).read_text() == \
            mappings.render_imap(name, instrument.upper(), "N/A", why)
    assert rmaps.INITIAL.joinpath("ligeriri_0001.pmap").read_text() == mappings.render_pmap(
        "ligeriri_0001.pmap", {"IRIS": "ligeriri_iris_0001.imap",
                               "LIGER": "ligeriri_liger_0001.imap"}, why)


# -- refusals -------------------------------------------------------------------------------
def test_the_same_file_twice_is_refused_naming_the_existing_entry(tmp_path):
    reference = full_frame_reference(tmp_path / "a.fits")
    cache = cache_with(tmp_path / "c", reference)
    with pytest.raises(DuplicateReferenceError, match="already registered as iris_dq_0001.fits"):
        cache.add(reference)
    assert cache.current_context == "ligeriri_0002.pmap"


def test_an_occupied_slot_needs_replace_and_replace_keeps_history(tmp_path):
    first = full_frame_reference(tmp_path / "a.fits", flags={"DEAD": [(1, 1)]})
    second = full_frame_reference(tmp_path / "b.fits", flags={"HOT": [(1, 1)]})
    cache = cache_with(tmp_path / "c", first)
    with pytest.raises(SlotTakenError, match="--replace"):
        cache.add(second)
    result = cache.add(second, replace=True)
    query = header("IRIS1", "2021-01-01")
    assert cache.bestref(query).reference == "iris_dq_0002.fits"
    assert cache.bestref(query, context=result.previous_context).reference == \
        "iris_dq_0001.fits"
    assert cache.reference_path("iris_dq_0001.fits").is_file()


def test_a_subarray_specific_reference_wins_after_its_useafter(tmp_path):
    full = full_frame_reference(tmp_path / "full.fits", useafter="2020-01-01")
    sub = subarray_reference(tmp_path / "sub.fits", flags={"HOT": [(0, 0)]})
    cache = cache_with(tmp_path / "c", full)
    model_sub = cache.add(sub)
    assert model_sub.reference.name == "iris_dq_0002.fits"
    assert cache.bestref(header("IRIS1", "2026-01-01", subarray="SUB64")).reference == \
        "iris_dq_0002.fits"
    assert cache.bestref(header("IRIS1", "2026-01-01", subarray="SUB128")).reference == \
        "iris_dq_0001.fits"


def test_an_invalid_reference_is_refused_and_the_cache_unchanged(tmp_path):
    from dqref import DQModel

    model = DQModel.blank("IRIS", "IRIS1")
    model.write(tmp_path / "ok.fits")
    from astropy.io import fits

    with fits.open(tmp_path / "ok.fits") as hdulist:
        hdulist[0].header["DETECTOR"] = "IRIS9"
        hdulist.writeto(tmp_path / "bad.fits", checksum=True)
    cache = cache_with(tmp_path / "c")
    with pytest.raises(InvalidReferenceError, match="IRIS9"):
        cache.add(tmp_path / "bad.fits")
    assert cache.current_context == "ligeriri_0001.pmap"
    assert cache.references() == []


@pytest.mark.parametrize("detector", ["IRIS1'), ('X", "IRIS1\nimport os", "IRIS1' : 'x"])
def test_injected_detectors_never_reach_a_mapping(detector):
    rule = mappings.MatchRule(detector, "N/A", (mappings.UseAfterEntry(
        "2020-01-01 00:00:00", "iris_dq_0001.fits"),))
    with pytest.raises(mappings.MappingValueError):
        mappings.render_rmap("ligeriri_iris_dq_0001.rmap", "IRIS", [rule], "test")


@pytest.mark.parametrize("useafter", ["2020-01-01 00:00:00' : 'x", "2020-01-01"])
def test_injected_useafters_never_reach_a_mapping(useafter):
    rule = mappings.MatchRule("IRIS1", "N/A", (mappings.UseAfterEntry(
        useafter, "iris_dq_0001.fits"),))
    with pytest.raises(mappings.MappingValueError, match="USEAFTER"):
        mappings.render_rmap("ligeriri_iris_dq_0001.rmap", "IRIS", [rule], "test")


def test_a_crafted_detector_in_a_file_is_refused_before_anything_is_published(tmp_path):
    from astropy.io import fits

    reference = full_frame_reference(tmp_path / "a.fits")
    with fits.open(reference) as hdulist:
        hdulist[0].header["DETECTOR"] = "IRIS1'),('X"
        hdulist.writeto(tmp_path / "crafted.fits", checksum=True)
    cache = cache_with(tmp_path / "c")
    with pytest.raises(InvalidReferenceError, match="DETECTOR"):
        cache.add(tmp_path / "crafted.fits")
    assert len(list(cache.mapping_dir.iterdir())) == 3


@pytest.mark.parametrize("name", ["../x.fits", "iris_dq_0001.fits/../../x", "nircam_dq_0001.fits"])
def test_reference_names_cannot_escape_the_cache(tmp_path, name):
    with pytest.raises(CacheError):
        LocalCache(tmp_path).reference_path(name)


def test_a_corrupted_rmap_is_a_clear_error_naming_the_file(tmp_path):
    cache = cache_with(tmp_path / "c", full_frame_reference(tmp_path / "a.fits"))
    rmap_path = cache.mapping_dir / "ligeriri_iris_dq_0001.rmap"
    rmap_path.write_text(rmap_path.read_text().replace("IMG1", "IMG2"))
    fresh = LocalCache(tmp_path / "c")
    with pytest.raises(CacheError, match="ligeriri_iris_dq_0001.rmap"):
        fresh.bestref(header())
    assert any("ligeriri_iris_dq_0001.rmap" in problem for problem in fresh.verify())
    result = runner.invoke(app, ["cache", "verify", "--path", str(tmp_path / "c")])
    assert result.exit_code == 1


# -- CLI --------------------------------------------------------------------------------
def test_cli_cache_commands(tmp_path):
    reference = full_frame_reference(tmp_path / "a.fits", useafter="2020-01-01")
    path = str(tmp_path / "c")
    assert runner.invoke(app, ["cache", "init", "--path", path]).exit_code == 0
    added = runner.invoke(app, ["cache", "add", str(reference), "--path", path])
    assert added.exit_code == 0 and "ligeriri_0002.pmap" in added.output
    found = runner.invoke(app, ["cache", "bestref", "--path", path, "--param", "INSTRUME=IRIS",
                                "--param", "DETECTOR=IRIS1", "--param", "DATE-OBS=2021-01-01",
                                "--param", "TIME-OBS=00:00:00"])
    assert found.exit_code == 0 and found.output.strip().endswith("iris_dq_0001.fits")
    missing = runner.invoke(app, ["cache", "bestref", "--path", path, "--param",
                                  "INSTRUME=IRIS", "--param", "DETECTOR=IRIS4"])
    assert missing.output.startswith("N/A (")
    listed = runner.invoke(app, ["cache", "list", "--path", path])
    assert "ligeriri_0002.pmap (current)" in listed.output
    assert "IMG1" in listed.output and "iris_dq_0001.fits" in listed.output
    assert runner.invoke(app, ["cache", "verify", "--path", path]).exit_code == 0
    again = runner.invoke(app, ["cache", "add", str(reference), "--path", path])
    assert again.exit_code == 2 and again.output.startswith("dqref: error:")
    uninitialised = runner.invoke(app, ["cache", "list", "--path", str(tmp_path / "none")])
    assert uninitialised.exit_code == 2 and "dqref cache init" in uninitialised.output


def test_cli_bestref_of_a_dataset_file(tmp_path):
    from support import sub_ramp

    cache = cache_with(tmp_path / "c", full_frame_reference(tmp_path / "a.fits"))
    ramp = sub_ramp(tmp_path / "r.fits")
    result = runner.invoke(app, ["cache", "bestref", str(ramp), "--path", str(cache.root)])
    assert result.exit_code == 0
    assert result.output.strip() == str(cache.reference_path("iris_dq_0001.fits"))
