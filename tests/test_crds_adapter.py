"""Pins what we rely on in crds internals, so a crds upgrade that breaks one fails here."""

from __future__ import annotations

import crds
from crds.core import constants, rmap, utils

from dqref.cache import crds_adapter, mappings


def test_the_observatory_is_installed_into_crds():
    crds_adapter.install_observatory()
    assert "ligeriri" in constants.ALL_OBSERVATORIES
    assert crds.ligeriri.INSTRUMENTS == ["iris", "liger"]
    assert crds.ligeriri.FILEKINDS == ["dq"]
    assert utils.get_locator_module("ligeriri").__name__.endswith("observatory.locate")


def test_crds_computes_the_checksum_over_all_but_the_sha1sum_line():
    text = mappings.render_pmap("ligeriri_0007.pmap", {"IRIS": "ligeriri_iris_0001.imap"}, "t")
    loaded = rmap.PipelineContext.from_string(text, "ligeriri_0007.pmap")
    assert loaded.header["sha1sum"] == crds_adapter.mapping_checksum(text)
    tampered = text.replace("'t'", "'u'")
    try:
        rmap.PipelineContext.from_string(tampered, "ligeriri_0007.pmap")
    except crds_adapter.ChecksumError:
        pass
    else:
        raise AssertionError("crds accepted a mapping whose checksum does not match")


def test_not_applicable_subarray_weighs_less_than_an_exact_match(tmp_path):
    rules = [mappings.MatchRule("IRIS1", "N/A", (mappings.UseAfterEntry(
                 "2020-01-01 00:00:00", "iris_dq_0001.fits"),)),
             mappings.MatchRule("IRIS1", "SUB64", (mappings.UseAfterEntry(
                 "2020-01-01 00:00:00", "iris_dq_0002.fits"),))]
    names = {"rmap": "ligeriri_iris_dq_0001.rmap", "imap": "ligeriri_iris_0001.imap",
             "pmap": "ligeriri_0001.pmap"}
    (tmp_path / names["rmap"]).write_text(mappings.render_rmap(names["rmap"], "IRIS", rules, "t"))
    (tmp_path / names["imap"]).write_text(mappings.render_imap(names["imap"], "IRIS",
                                                               names["rmap"], "t"))
    (tmp_path / names["pmap"]).write_text(mappings.render_pmap(names["pmap"],
                                                               {"IRIS": names["imap"]}, "t"))
    context = crds_adapter.load_context(tmp_path, names["pmap"])
    base = {"INSTRUME": "IRIS", "DETECTOR": "IRIS1", "DATE-OBS": "2021-01-01",
            "TIME-OBS": "00:00:00"}
    assert crds_adapter.best_reference(context, {**base, "SUBARRAY": "SUB64"}) == \
        "iris_dq_0002.fits"
    assert crds_adapter.best_reference(context, {**base, "SUBARRAY": "FULL"}) == \
        "iris_dq_0001.fits"
