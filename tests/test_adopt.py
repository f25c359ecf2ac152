"""``dqref cache adopt``: the Liger/IRIS team's hand-made cache, reported and repaired.

Uses their mappings as published (``../shared/clients/liger-iris-crds-cache``); their
reference files are Git LFS pointers upstream, so they are reported missing, not fatal.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dqref.cache import crds_adapter
from dqref.cache.adopt import adopt
from dqref.cache.local_cache import CacheError, LocalCache
from dqref.cli import app

TEAM = Path(__file__).resolve().parents[1].parent / "shared" / "clients" / \
    "liger-iris-crds-cache"
pytestmark = pytest.mark.skipif(not TEAM.is_dir(),
                                reason=f"the team's cache {TEAM} (../shared) is absent")
runner = CliRunner()
MISSING = ["IRIS_DQ.fits", "IRIS_IMG1_DARK_20240924T000000_0.0.1.fits",
           "IRIS_IMG1_FLAT_20240924T000000_0.0.1.fits",
           "IRIS_IMG1_NONLINCOEFF_20240924T000000_0.0.1.fits",
           "liger_iris_iris_drizpars_0001.fits"]


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def adopted(tmp_path_factory):
    before = snapshot(TEAM)
    report = adopt(TEAM, tmp_path_factory.mktemp("adopted") / "cache", repair=True)
    assert snapshot(TEAM) == before  # nothing of SRC is written
    return report, LocalCache(tmp_path_factory.getbasetemp() / "adopted0" / "cache")


def test_every_problem_of_the_team_cache_is_reported_at_once():
    report = adopt(TEAM)
    text = "\n".join(report.problems)
    assert "operational_context 'iris_liger_0001.pmap' does not exist" in text
    for name in ("ligeriri_0001.pmap", "ligeriri_iris_0001.imap", "ligeriri_iris_dq_0001.rmap",
                 "ligeriri_iris_dark_0001.rmap", "ligeriri_liger_0001.imap"):
        assert f"{name}: stale checksum (sha1sum mismatch in '{name}')" in text
    assert "ligeriri_0001.pmap: sets 'ignore_checksum'" in text
    assert "ligeriri_iris_nonlin_0001.rmap: its header names it 'ligeriri_nonlin_0001.rmap'" \
        in text
    assert "ligeriri_liger_0001.imap: names ligeriri_liger_dq_0001.rmap for DQ, which does " \
           "not exist" in text
    assert report.missing_references == MISSING
    assert report.context is None


def test_cli_adopt_without_repair_exits_1_listing_the_problems():
    result = runner.invoke(app, ["cache", "adopt", str(TEAM)])
    assert result.exit_code == 1
    assert "problem: " in result.stdout and "stale checksum" in result.stdout
    assert f"{TEAM}: 21 problems" in result.stdout


def test_repair_writes_a_context_that_crds_loads_with_checksums(adopted):
    report, cache = adopted
    assert report.context == "ligeriri_0002.pmap" == cache.current_context
    assert cache.verify() == [f"{cache.reference_path(n)}: named by ligeriri_0002.pmap but "
                              "missing" for n in MISSING]
    assert (cache.config_dir / "ref_cache_subdir_mode").read_text() == "instrument"


def test_repair_keeps_every_rule_of_every_filekind(adopted):
    _, cache = adopted
    pipeline = cache.context()
    repaired = pipeline.get_imap("iris")
    for filekind in ("dark", "flat", "nonlincoeff", "drizpars", "dq"):
        source_name = {"nonlincoeff": "ligeriri_iris_nonlin_0001.rmap"}.get(
            filekind, f"ligeriri_iris_{filekind}_0001.rmap")
        _, source = crds_adapter.read_mapping_leniently(TEAM / "mappings/ligeriri" / source_name)
        new = repaired.get_rmap(filekind)
        assert new.selector.todict() == source.selector.todict(), filekind
        assert new.parkey == source.parkey
        assert new.header.get("substitutions", None) == source.header.get("substitutions", None)
    assert sorted(crds_adapter.reference_names(pipeline)) == sorted(MISSING)


def test_the_liger_imap_with_dangling_names_becomes_not_applicable(adopted):
    _, cache = adopted
    liger = cache.context().get_imap("liger")
    assert {k: str(v) for k, v in liger.selections.items()} == {
        kind: "N/A" for kind in ("dark", "dq", "drizpars", "flat", "nonlincoeff")}


def test_the_adopted_rules_select_under_our_observatory(adopted):
    _, cache = adopted
    header = {"META.INSTRUMENT.NAME": "IRIS", "META.INSTRUMENT.DETECTOR": "IRIS1",
              "META.INSTRUMENT.ERA": "0.0.0", "META.EXPOSURE.READMODE": "DEFAULT",
              "META.SUBARRAY.NAME": "FULL", "META.INSTRUMENT.FILTER": "Y",
              "META.INSTRUMENT.PUPIL": "CLEAR", "EXPDTST": "20250601000000"}
    with crds_adapter.crds_environment(cache.root):
        import crds

        answer = crds.getrecommendations(header, observatory="ligeriri")
    assert answer == {"dark": "IRIS_IMG1_DARK_20240924T000000_0.0.1.fits",
                      "dq": "IRIS_DQ.fits",
                      "drizpars": "liger_iris_iris_drizpars_0001.fits",
                      "flat": "IRIS_IMG1_FLAT_20240924T000000_0.0.1.fits",
                      "nonlincoeff": "IRIS_IMG1_NONLINCOEFF_20240924T000000_0.0.1.fits"}
    assert cache.bestref(header).reference == "IRIS_DQ.fits"


def test_adding_a_dqref_reference_to_the_adopted_cache_keeps_the_other_filekinds(
        tmp_path, make_reference):
    cache = LocalCache(tmp_path / "cache")
    adopt(TEAM, cache.root, repair=True)
    result = cache.add(make_reference(tmp_path / "new.fits", "IMG1", "2026-01-01"))
    imap = cache.context(result.context).get_imap("iris")
    assert imap.get_rmap("dark").name == "ligeriri_iris_dark_0002.rmap"
    assert imap.get_rmap("nonlincoeff").name == "ligeriri_iris_nonlin_0002.rmap"
    after = {"INSTRUME": "IRIS", "DETECTOR": "IMG1", "EXPDTST": "20260601000000"}
    assert cache.bestref(after).reference == result.reference.name == "iris_dq_0001.fits"


def test_repair_refuses_an_existing_cache(adopted):
    _, cache = adopted
    with pytest.raises(CacheError, match="already a cache"):
        adopt(TEAM, cache.root, repair=True)
