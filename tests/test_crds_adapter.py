"""Pins every crds behaviour dqref relies on, so a crds upgrade that breaks one fails here.

Everything goes through the real crds package: the observatory plugin, mapping loading
from an arbitrary folder, checksums, Match weights of 'N/A', and the public
``crds.getrecommendations`` in local mode.
"""

from __future__ import annotations

import os
import subprocess
import sys

import crds
import pytest
from astropy.io import fits
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


# -- the import hook (.pth) ------------------------------------------------------------------
def python(code: str, *flags: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CRDS_")}
    return subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True,
                          env=environment, timeout=120)


def test_the_pth_hook_registers_only_a_finder_and_imports_nothing():
    result = python("import sys; print(type(sys.meta_path[0]).__name__, "
                    "sorted(m for m in sys.modules if m.startswith(('crds', 'dqref'))))")
    assert result.stdout.split(maxsplit=1) == ["ObservatoryFinder", "[]\n"], result.stderr


def test_a_fresh_process_knows_the_observatory_without_importing_dqref():
    result = python("import crds, sys; from crds.core import constants, utils; "
                    "print(constants.ALL_OBSERVATORIES[-1], "
                    "utils.get_observatory_package('ligeriri').__name__, "
                    "utils.get_locator_module('ligeriri').__name__, "
                    "'dqref' in sys.modules)")
    assert result.stdout.split() == ["ligeriri", "crds.ligeriri", "crds.ligeriri.locate",
                                     "False"], result.stderr


def test_without_site_processing_install_observatory_still_works():
    code = ("import sys; sys.path[:0] = %r; import crds; "
            "from crds.core import constants; assert 'ligeriri' not in "
            "constants.ALL_OBSERVATORIES; from dqref.cache import crds_adapter; "
            "crds_adapter.install_observatory(); print(constants.ALL_OBSERVATORIES[-1])"
            % [p for p in sys.path if p])
    result = python(code, "-S")
    assert result.stdout.strip() == "ligeriri", result.stderr


# -- every hook crds calls, pinned by watching crds call it ----------------------------------
@pytest.fixture
def calls(monkeypatch):
    """Record which ``crds.ligeriri.locate`` hooks crds calls (the real hooks still run)."""
    locate = crds_adapter.locator()
    seen = []
    for name in ("fits_to_parkeys", "get_cross_strapped_pairs", "project_check",
                 "reference_keys_to_dataset_keys", "condition_matching_header",
                 "get_file_properties", "locate_file", "filekind_to_keyword",
                 "get_env_prefix", "match_context_key"):
        real = getattr(locate, name)

        def spy(*args, _real=real, _name=name, **keys):
            seen.append(_name)
            return _real(*args, **keys)
        monkeypatch.setattr(locate, name, spy)
    return seen


def test_bestref_calls_fits_to_parkeys_on_the_dataset_header(registered_cache, calls):
    cache, _ = registered_cache
    crds_adapter.getrecommendations(cache.root, observation())
    assert "fits_to_parkeys" in calls


def test_crds_bestrefs_calls_the_header_and_keyword_hooks(registered_cache, calls, tmp_path):
    from crds.bestrefs import BestrefsScript

    cache, _ = registered_cache
    dataset = tmp_path / "dataset.fits"
    fits.PrimaryHDU(header=fits.Header(list(observation("IMG1").items()))).writeto(dataset)
    with crds_adapter.crds_environment(cache.root):
        errors = BestrefsScript(f"crds.bestrefs --files {dataset} --update-bestrefs")()
    assert errors == 0
    assert fits.getheader(dataset)["R_DQ"] == "crds://iris_dq_0002.fits"
    for hook in ("get_cross_strapped_pairs", "fits_to_parkeys", "filekind_to_keyword",
                 "get_env_prefix"):
        assert hook in calls, hook


def test_crds_certify_of_a_reference_calls_project_check_with_the_rmap(registered_cache,
                                                                      calls, tmp_path):
    from crds.certify import CertifyScript

    cache, references = registered_cache
    with crds_adapter.crds_environment(cache.root):
        errors = CertifyScript(f"crds.certify --check-rmap-updates {references[0].reference}")()
    assert errors == 0
    for hook in ("get_file_properties", "project_check", "reference_keys_to_dataset_keys",
                 "condition_matching_header"):
        assert hook in calls, hook


def test_project_check_takes_the_reference_and_its_rmap():
    crds_adapter.locator().project_check("iris_dq_0001.fits", None)


# -- names ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "properties"), [
    ("IRIS_DQ.fits", ("iris", "dq")),
    ("IRIS_IMG1_DARK_20240924T000000_0.0.1.fits", ("iris", "dark")),
    ("IRIS_IMG1_NONLINCOEFF_20240924T000000_0.0.1.fits", ("iris", "nonlincoeff")),
    ("liger_iris_iris_drizpars_0001.fits", ("iris", "drizpars")),
    ("ligeriri_iris_nonlin_0001.rmap", ("iris", "nonlincoeff")),
    ("Liger_IMG_FLAT_x.fits", ("liger", "flat")),
])
def test_crds_accepts_the_team_s_reference_and_mapping_names(name, properties):
    assert crds_adapter.file_properties(name) == properties


@pytest.mark.parametrize("name", ["nircam_dq_0001.fits", "iris_0001.fits", "iris_dq.txt",
                                  "../iris_dq_0001.fits", "iris dq.fits"])
def test_names_that_do_not_say_instrument_and_filekind_are_refused(name):
    with pytest.raises(ValueError, match="not a ligeriri reference or mapping name"):
        crds_adapter.file_properties(name)


def test_the_packaged_specs_agree_with_the_combined_json():
    import json

    from crds.core import reftypes

    folder = os.path.join(os.path.dirname(crds.ligeriri.__file__), "specs")
    raw = reftypes.load_raw_specs(folder)
    combined = json.load(open(os.path.join(folder, "combined_specs.json")))
    assert {i: sorted(k) for i, k in raw.items()} == {i: sorted(k) for i, k in combined.items()}


# -- dataset headers as the Liger/IRIS pipeline writes them ------------------------------------
def parkeys(header: dict) -> dict:
    return crds_adapter.locator().fits_to_parkeys(utils.condition_header(header))


@pytest.mark.parametrize(("header", "date", "time"), [
    ({"EXPDTST": "20250601123456"}, "2025-06-01", "12:34:56"),
    ({"EXPJDST": 2460827.5}, "2025-06-01", "00:00:00"),
    ({"META.EXPOSURE.JD_START": 2460827.75}, "2025-06-01", "06:00:00"),
    ({"META.EXPOSURE.DATETIME_START": "20250601000000", "EXPJDST": 2460000.5},
     "2025-06-01", "00:00:00"),
    ({"DATE-OBS": "2024-01-02", "TIME-OBS": "03:04:05", "EXPDTST": "20250601000000"},
     "2024-01-02", "03:04:05"),
])
def test_the_observation_start_comes_from_date_obs_else_expdtst_else_expjdst(header, date,
                                                                             time):
    crossed = parkeys({"INSTRUME": "IRIS", **header})
    assert (crossed["META.OBSERVATION.DATE"], crossed["META.OBSERVATION.TIME"]) == (date, time)
    assert crossed["META.DATE"] == f"{date}T{time}"


def test_an_existing_meta_date_is_kept():
    crossed = parkeys({"INSTRUME": "IRIS", "EXPDTST": "20250601000000",
                       "META.DATE": "2030-01-01T00:00:00"})
    assert crossed["META.DATE"] == "2030-01-01T00:00:00"


def test_pipeline_keys_are_cross_strapped_both_ways():
    crossed = parkeys({"INSTRUME": "Liger", "IMTYPE": "SCI", "READMODE": "DEFAULT",
                       "META.EXPOSURE.DATETIME_START": "20250601000000"})
    assert crossed["META.EXPOSURE.IMTYPE"] == "SCI"
    assert crossed["META.EXPOSURE.READMODE"] == "DEFAULT"
    assert crossed["EXPDTST"] == crossed["META.EXPOSURE.DATETIME_START"]
    assert crossed["META.INSTRUMENT.NAME"] == "LIGER"


@pytest.mark.parametrize(("instrument", "detector", "canonical"), [
    ("IRIS", "IRIS1", "IMG1"), ("Iris", "img4", "IMG4"), ("IRIS", "IMG2", "IMG2"),
    ("Liger", "IMG", "IMG"), ("LIGER", "ifu", "IFU"), ("IRIS", "MULTIPLE", "MULTIPLE"),
])
def test_detector_names_are_canonical_in_every_lookup(instrument, detector, canonical):
    crossed = parkeys({"INSTRUME": instrument, "DETECTOR": detector})
    assert crossed["META.INSTRUMENT.DETECTOR"] == crossed["DETECTOR"] == canonical


@pytest.mark.parametrize("detector", ["IRIS1", "IMG1"])
@pytest.mark.parametrize("made_as", ["IRIS1", "IMG1"])
def test_a_reference_made_under_an_alias_serves_the_other_name(tmp_path, detector, made_as):
    pmap = write_context(tmp_path, [mappings.MatchRule(made_as, "N/A", (
        entry("2020-01-01 00:00:00", "iris_dq_0001.fits"),))])
    pipeline = crds_adapter.load_context(tmp_path, pmap)
    assert crds_adapter.best_reference(pipeline, observation(detector)) == "iris_dq_0001.fits"


@pytest.mark.parametrize("subarray", ["FULL", "CUSTOM", "GENERIC", "N/A"])
def test_every_pipeline_subarray_value_gets_the_full_frame_rule(full_and_sub64, subarray):
    header = {"INSTRUME": "Iris", "DETECTOR": "IMG1", "SUBARRAY": subarray,
              "EXPDTST": "20260101000000"}
    assert crds_adapter.best_reference(full_and_sub64, header) == "iris_dq_0001.fits"


def test_instrument_selection_is_case_insensitive(full_and_sub64):
    for spelling in ("IRIS", "Iris", "iris"):
        assert crds_adapter.best_reference(full_and_sub64, observation() | {
            "INSTRUME": spelling}) == "iris_dq_0001.fits"


# -- the answer type -----------------------------------------------------------------------------
def test_bestref_keyword_values(tmp_path):
    from dqref.cache.local_cache import BestRef

    assert BestRef("ligeriri_0002.pmap", "iris_dq_0001.fits", tmp_path).keyword_value == \
        "crds://iris_dq_0001.fits"
    override = BestRef.user_override(tmp_path / "mine.fits")
    assert (override.context, override.origin, override.reference, override.path) == \
        ("N/A", "user", "mine.fits", tmp_path / "mine.fits")
    assert override.keyword_value == "user:mine.fits"
    assert BestRef("ligeriri_0002.pmap", None, None, "no match").keyword_value == "N/A"


def test_reference_checks_come_from_the_entry_point_group():
    from importlib.metadata import entry_points

    names = [e.value for e in entry_points(group=crds_adapter.CHECKS_GROUP)]
    assert names == ["dqinit.roundtrip:roundtrip_findings"]
