"""Pins every crds behaviour dqref relies on, so a crds upgrade that breaks one fails here.

Everything goes through the real crds package: the observatory plugin, mapping loading
from an arbitrary folder, checksums, Match weights of 'N/A', and the public
``crds.getrecommendations`` in local mode.
"""

from __future__ import annotations

import os

import crds
import pytest
from crds.core import constants, rmap, utils

import rmaps
from dqref.cache import crds_adapter, mappings
from dqref.cache.local_cache import LocalCache

WHY = "test"


def observation(detector="IRIS1", date="2026-01-01", subarray="FULL") -> dict:
    return {"INSTRUME": "IRIS", "DETECTOR": detector, "SUBARRAY": subarray,
            "DATE-OBS": date, "TIME-OBS": "00:00:00"}


def entry(useafter: str, reference: str) -> mappings.UseAfterEntry:
    return mappings.UseAfterEntry(useafter, reference)


def write_context(folder, rules) -> str:
    """Render and write an rmap, imap and pmap selecting ``rules``; return the pmap name."""
    names = {"rmap": "ligeriri_iris_dq_0001.rmap", "imap": "ligeriri_iris_0002.imap",
             "pmap": "ligeriri_0002.pmap"}
    (folder / names["rmap"]).write_text(mappings.render_rmap(names["rmap"], "IRIS", rules, WHY))
    (folder / names["imap"]).write_text(mappings.render_imap(names["imap"], "IRIS",
                                                             names["rmap"], WHY))
    (folder / names["pmap"]).write_text(mappings.render_pmap(names["pmap"],
                                                             {"IRIS": names["imap"]}, WHY))
    return names["pmap"]


# -- the observatory plugin ------------------------------------------------------------------
def test_the_observatory_is_installed_into_crds():
    crds_adapter.install_observatory()
    assert "ligeriri" in constants.ALL_OBSERVATORIES
    assert crds.ligeriri.__name__ == "crds.ligeriri"
    assert crds.ligeriri.__file__.endswith(os.path.join("dqref", "cache", "observatory",
                                                        "__init__.py"))
    assert crds.ligeriri.INSTRUMENTS == ["iris", "liger"]
    # every filekind of the Liger/IRIS team's cache (dqref manages only dq)
    assert crds.ligeriri.FILEKINDS == ["dark", "dq", "drizpars", "flat", "nonlincoeff"]


def test_installing_twice_changes_nothing():
    crds_adapter.install_observatory()
    before = list(constants.ALL_OBSERVATORIES)
    crds_adapter.install_observatory()
    assert constants.ALL_OBSERVATORIES == before
    assert constants.ALL_OBSERVATORIES.count("ligeriri") == 1


def test_crds_finds_our_locator_module():
    crds_adapter.install_observatory()
    assert utils.get_locator_module("ligeriri").__name__ == "crds.ligeriri.locate"


@pytest.mark.parametrize(("name", "properties"), [
    ("iris_dq_0001.fits", ("iris", "dq")),
    ("liger_dq_0002.fits", ("liger", "dq")),
    ("ligeriri_iris_dq_0001.rmap", ("iris", "dq")),
    ("ligeriri_iris_0002.imap", ("iris", "")),
])
def test_crds_reads_instrument_and_filekind_from_our_file_names(name, properties):
    crds_adapter.install_observatory()
    assert utils.get_file_properties("ligeriri", name) == properties


def test_stpipe_keys_and_fits_keywords_are_cross_strapped():
    crds_adapter.install_observatory()
    crossed = crds.ligeriri.locate.cross_strap({"META.INSTRUMENT.DETECTOR": "IRIS1",
                                                "date-obs": "2026-01-01"})
    assert crossed["DETECTOR"] == "IRIS1"
    assert crossed["META.OBSERVATION.DATE"] == "2026-01-01"


# -- loading mappings ------------------------------------------------------------------------
def test_load_mapping_reads_a_context_from_any_folder():
    crds_adapter.install_observatory()
    pipeline = rmap.load_mapping("ligeriri_0001.pmap", path=str(rmaps.INITIAL))
    assert pipeline.observatory == "ligeriri"
    assert pipeline.get_imap("iris").basename == "ligeriri_iris_0001.imap"
    assert pipeline.get_imap("liger").basename == "ligeriri_liger_0001.imap"


def test_load_context_loads_every_mapping_it_names(tmp_path):
    pmap = write_context(tmp_path, [mappings.MatchRule("IRIS1", "N/A", (
        entry("2020-01-01 00:00:00", "iris_dq_0001.fits"),))])
    pipeline = crds_adapter.load_context(tmp_path, pmap)
    assert crds_adapter.mapping_names(pipeline) == [
        "ligeriri_0002.pmap", "ligeriri_iris_0002.imap", "ligeriri_iris_dq_0001.rmap"]
    assert crds_adapter.reference_names(pipeline) == ["iris_dq_0001.fits"]


def test_load_context_of_a_missing_pmap_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        crds_adapter.load_context(tmp_path, "ligeriri_0099.pmap")


def test_rmap_selections_lists_match_keys_and_useafter_dates(tmp_path):
    pmap = write_context(tmp_path, [
        mappings.MatchRule("IRIS1", "N/A", (entry("2020-01-01 00:00:00", "iris_dq_0001.fits"),
                                            entry("2025-01-01 00:00:00", "iris_dq_0002.fits"))),
        mappings.MatchRule("IRIS2", "SUB64", (entry("2021-01-01 00:00:00",
                                                    "iris_dq_0003.fits"),))])
    selections = crds_adapter.rmap_selections(crds_adapter.load_context(tmp_path, pmap), "IRIS")
    # crds 14 gives each UseAfter key as a 1-tuple; LocalCache.rules/_rules_of unwrap it.
    assert selections == {  # rendered with canonical detector names
        ("IMG1", "N/A"): {("2020-01-01 00:00:00",): "iris_dq_0001.fits",
                          ("2025-01-01 00:00:00",): "iris_dq_0002.fits"},
        ("IMG2", "SUB64"): {("2021-01-01 00:00:00",): "iris_dq_0003.fits"}}


# -- checksums -------------------------------------------------------------------------------
def test_rendered_mappings_are_written_by_crds_so_crds_checksum_changes_nothing(tmp_path):
    text = mappings.render_pmap("ligeriri_0007.pmap", {"IRIS": "ligeriri_iris_0001.imap"}, "t")
    loaded = rmap.PipelineContext.from_string(text, "ligeriri_0007.pmap")
    path = tmp_path / "ligeriri_0007.pmap"
    path.write_text(text)
    from crds.refactoring import checksum

    checksum.update_checksum(str(path))  # what `crds checksum` does
    assert path.read_text() == text
    assert repr(loaded.header["sha1sum"]) in text


def test_crds_refuses_a_mapping_whose_checksum_does_not_match(monkeypatch):
    monkeypatch.delenv("CRDS_IGNORE_MAPPING_CHECKSUM", raising=False)
    text = mappings.render_pmap("ligeriri_0007.pmap", {"IRIS": "ligeriri_iris_0001.imap"}, "t")
    with pytest.raises(crds_adapter.ChecksumError, match="sha1sum mismatch"):
        rmap.PipelineContext.from_string(text.replace("'t'", "'u'"), "ligeriri_0007.pmap")


def test_checksum_error_is_a_mapping_error():
    assert issubclass(crds_adapter.ChecksumError, crds_adapter.MappingError)


def test_load_mapping_from_a_folder_verifies_the_checksum(tmp_path, monkeypatch):
    monkeypatch.delenv("CRDS_IGNORE_MAPPING_CHECKSUM", raising=False)
    pmap = write_context(tmp_path, [mappings.MatchRule("IRIS1", "N/A", (
        entry("2020-01-01 00:00:00", "iris_dq_0001.fits"),))])
    path = tmp_path / "ligeriri_iris_dq_0001.rmap"
    path.write_text(path.read_text().replace("iris_dq_0001.fits", "iris_dq_0002.fits"))
    with pytest.raises(crds_adapter.ChecksumError, match="ligeriri_iris_dq_0001.rmap"):
        crds_adapter.load_context(tmp_path, pmap)


def test_prove_turns_crds_refusals_into_mapping_load_error():
    text = mappings.render_imap("ligeriri_iris_0002.imap", "IRIS", "ligeriri_iris_dq_0001.rmap",
                                "t")
    with pytest.raises(mappings.MappingLoadError, match="ligeriri_iris_0002.imap: crds cannot "
                                                        "load it: sha1sum mismatch"):
        mappings.prove(text.replace("'t'", "'x'"), "ligeriri_iris_0002.imap")


def test_parse_mapping_validates_an_rmap_against_the_type_constraints():
    text = mappings.render_rmap("ligeriri_iris_dq_0001.rmap", "IRIS", [mappings.MatchRule(
        "IRIS1", "N/A", (entry("2020-01-01 00:00:00", "iris_dq_0001.fits"),))], "t")
    loaded = crds_adapter.parse_mapping(text, "ligeriri_iris_dq_0001.rmap")
    assert isinstance(loaded, rmap.ReferenceMapping)
    assert (loaded.instrument, loaded.filekind) == ("iris", "dq")
    assert loaded.parkey == (("META.INSTRUMENT.DETECTOR", "META.SUBARRAY.NAME"),
                             ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME"))


# -- selection -------------------------------------------------------------------------------
@pytest.fixture
def full_and_sub64(tmp_path):
    """A context where IRIS1 has a full-frame rule ('N/A') and a SUB64 rule, same date."""
    pmap = write_context(tmp_path, [
        mappings.MatchRule("IRIS1", "N/A", (entry("2020-01-01 00:00:00", "iris_dq_0001.fits"),)),
        mappings.MatchRule("IRIS1", "SUB64", (entry("2020-01-01 00:00:00",
                                                    "iris_dq_0002.fits"),))])
    return crds_adapter.load_context(tmp_path, pmap)


def test_an_exact_subarray_match_weighs_more_than_not_applicable(full_and_sub64):
    assert crds_adapter.best_reference(full_and_sub64, observation(subarray="SUB64")) == \
        "iris_dq_0002.fits"


@pytest.mark.parametrize("subarray", ["FULL", "SUB128", "SUBSTRIPE256"])
def test_not_applicable_matches_every_other_subarray(full_and_sub64, subarray):
    assert crds_adapter.best_reference(full_and_sub64, observation(subarray=subarray)) == \
        "iris_dq_0001.fits"


def test_best_reference_accepts_stpipe_keys(full_and_sub64):
    header = {"META.INSTRUMENT.NAME": "IRIS", "META.INSTRUMENT.DETECTOR": "IRIS1",
              "META.SUBARRAY.NAME": "SUB64", "META.OBSERVATION.DATE": "2026-01-01",
              "META.OBSERVATION.TIME": "00:00:00"}
    assert crds_adapter.best_reference(full_and_sub64, header) == "iris_dq_0002.fits"


def test_best_reference_before_every_useafter_is_crds_not_found(full_and_sub64):
    assert crds_adapter.best_reference(full_and_sub64, observation(date="2019-01-01")) == \
        "NOT FOUND No match found."


def test_best_reference_for_an_instrument_declared_not_applicable():
    crds_adapter.install_observatory()
    pipeline = crds_adapter.load_context(rmaps.INITIAL, "ligeriri_0001.pmap")
    assert crds_adapter.best_reference(pipeline, observation()).startswith("NOT FOUND")


# -- crds's public API in local mode -----------------------------------------------------------
def test_getrecommendations_answers_from_a_local_cache(registered_cache):
    cache, _ = registered_cache
    assert crds_adapter.getrecommendations(cache.root, observation("IRIS1", "2022-01-01")) == \
        "iris_dq_0001.fits"
    assert crds_adapter.getrecommendations(cache.root, observation("IRIS2")) == \
        "iris_dq_0003.fits"


def test_getrecommendations_without_a_match_is_not_found(registered_cache):
    cache, _ = registered_cache
    assert crds_adapter.getrecommendations(
        cache.root, observation("IRIS1", "2019-01-01")).startswith("NOT FOUND")


def test_getrecommendations_honours_an_explicit_context(registered_cache):
    cache, _ = registered_cache
    assert crds_adapter.getrecommendations(cache.root, observation("IRIS1"),
                                           context="ligeriri_0002.pmap") == "iris_dq_0001.fits"


def test_getrecommendations_restores_the_crds_environment(registered_cache, monkeypatch,
                                                          tmp_path):
    cache, _ = registered_cache
    monkeypatch.setenv("CRDS_PATH", str(tmp_path / "mine"))
    monkeypatch.delenv("CRDS_MODE", raising=False)
    monkeypatch.delenv("CRDS_OBSERVATORY", raising=False)
    crds_adapter.getrecommendations(cache.root, observation())
    assert os.environ["CRDS_PATH"] == str(tmp_path / "mine")
    assert "CRDS_MODE" not in os.environ and "CRDS_OBSERVATORY" not in os.environ


def test_getrecommendations_never_reuses_another_caches_mapping_of_the_same_name(
        registered_cache, empty_cache, three_references):
    cache, _ = registered_cache
    empty_cache.add(three_references[2])  # its ligeriri_0002.pmap knows only IRIS2
    iris1 = observation("IRIS1")
    assert crds_adapter.getrecommendations(cache.root, iris1, context="ligeriri_0002.pmap") == \
        "iris_dq_0001.fits"
    assert crds_adapter.getrecommendations(empty_cache.root, iris1,
                                           context="ligeriri_0002.pmap").startswith("NOT FOUND")
    assert crds_adapter.getrecommendations(cache.root, iris1, context="ligeriri_0002.pmap") == \
        "iris_dq_0001.fits"


def test_getrecommendations_and_local_bestref_agree_for_a_fresh_cache_object(registered_cache):
    cache, _ = registered_cache
    fresh = LocalCache(cache.root)
    for header in (observation("IRIS1", "2021-01-01"), observation("IRIS1", "2030-01-01"),
                   observation("IRIS2", "2030-01-01", subarray="SUB64")):
        assert fresh.bestref(header).reference == \
            crds_adapter.getrecommendations(cache.root, header)
