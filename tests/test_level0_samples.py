"""The Liger/IRIS pipeline's own level-0 ramps through dqinit (CLI, Python API, stpipe).

The samples in ``../shared/clients/liger_iris_pipeline/samples/`` were written by that
pipeline's code (its RampModel and test helpers). Where ``../shared`` is absent these
tests are skipped, never failed.
"""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import asdf
import numpy as np
import pytest
from astropy.io import fits
from typer.testing import CliRunner

from dqinit import DQInitStep
from dqinit.cli import app
from dqinit.errors import RampFormatError
from dqref import DQModel, flags

SAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "clients" / \
    "liger_iris_pipeline" / "samples"
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(),
                                reason=f"the pipeline's sample ramps are not here ({SAMPLES})")
stdatamodels_fits = pytest.importorskip("stdatamodels.fits_support")

DNU = flags.value("DO_NOT_USE")
DEAD_DNU = flags.value("DEAD|DO_NOT_USE")
HIGH_BITS = flags.value("LOW_QE|NO_LIN_CORR|REFERENCE_PIXEL")  # bits 16-31
HOT = flags.value("HOT")
#: sample -> (instrument, detector name in the reference, 0-indexed detector origin (y, x),
#: image plane (rows, columns)), read from the samples' headers.
GEOMETRY = {
    "iris_img1_custom_lvl0.fits": ("IRIS", "IMG1", (2048, 1024), (128, 96)),
    "liger_img_custom_lvl0.fits": ("LIGER", "IMG", (16, 1200), (100, 80)),
    "iris_ifu_custom_lvl0.fits": ("IRIS", "IFU", (0, 0), (64, 64)),
}
#: science-plane pixels and the flags the reference puts there
PLANTED = {(5, 7): DEAD_DNU, (20, 30): HIGH_BITS, (0, 0): HOT}


def sample(name: str) -> Path:
    return SAMPLES / name


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> dict[str, Path]:
    """One full-frame reference per sample detector, flags planted in the sample region,
    plus one flag just outside it."""
    folder = tmp_path_factory.mktemp("refs")
    made = {}
    for name, (instrument, detector, (y0, x0), (rows, columns)) in GEOMETRY.items():
        model = DQModel.blank(instrument, detector, useafter="2020-01-01")
        for (y, x), value in PLANTED.items():
            model.flag([[y0 + y, x0 + x]], int(value))
        model.flag([[y0 + rows, x0 + columns]], "HOT")  # outside: must not arrive
        path = folder / f"{instrument}_{detector}.fits"
        model.write(path)
        made[name] = path
    return made


def read(path: Path):
    with fits.open(path) as hdulist:
        return hdulist[0].header.copy(), hdulist["PIXELDQ"].data.copy(), \
            hdulist["DQ"].data.copy(), [hdu.name for hdu in hdulist]


def stored_tree(path: Path) -> dict:
    with fits.open(path) as hdulist:
        raw = hdulist["ASDF"].data.tobytes()
        matches = stdatamodels_fits.fits_hash(hdulist)
    with asdf.open(io.BytesIO(raw), _force_raw_types=True, lazy_load=False) as tree:
        return {**tree.tree, "hash_matches": tree.tree["_fits_hash"] == matches}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(GEOMETRY))
def test_each_sample_gets_the_exact_flags_at_the_exact_pixels(name, references, tmp_path):
    before = digest(sample(name))
    result = DQInitStep(override_dq=references[name]).run(sample(name),
                                                           output=tmp_path / "out.fits")
    header, pixeldq, dq, names = read(result.output)

    assert result.status == "COMPLETE" and header["S_DQINIT"] == "COMPLETE"
    assert names == ["PRIMARY", "TIMES", "DATA", "DQ", "PIXELDQ", "ASDF"]
    assert pixeldq.dtype == np.uint32 and pixeldq.shape == GEOMETRY[name][3]
    assert {tuple(int(i) for i in p): int(pixeldq[tuple(p)]) for p in np.argwhere(pixeldq)} \
        == {pixel: int(value) for pixel, value in PLANTED.items()}
    assert digest(sample(name)) == before  # the input is never changed


@pytest.mark.parametrize("name", sorted(GEOMETRY))
def test_do_not_use_reaches_every_group_and_read_and_nothing_else(name, references, tmp_path):
    result = DQInitStep(override_dq=references[name]).run(sample(name),
                                                           output=tmp_path / "out.fits")
    _, _, dq, _ = read(result.output)
    with fits.open(sample(name)) as original:
        existing = original["DQ"].data.copy()
    assert dq.dtype == np.uint16 and dq.shape == existing.shape
    assert (dq[5, 7] == existing[5, 7] | DNU).all()
    others = np.ones(dq.shape[:2], bool)
    others[5, 7] = False
    assert np.array_equal(dq[others], existing[others])


@pytest.mark.parametrize("name", sorted(GEOMETRY))
def test_the_flag_already_in_dq_is_kept(name, references, tmp_path):
    with fits.open(sample(name)) as original:
        assert original["DQ"].data[0, 0, 0, 0] == 4  # what the pipeline's helper writes
    result = DQInitStep(override_dq=references[name]).run(sample(name),
                                                           output=tmp_path / "out.fits")
    _, _, dq, _ = read(result.output)
    assert dq[0, 0, 0, 0] == 4


def test_bits_16_to_31_arrive_in_pixeldq_and_are_never_narrowed_into_dq(references, tmp_path):
    name = "iris_img1_custom_lvl0.fits"
    result = DQInitStep(override_dq=references[name]).run(sample(name),
                                                           output=tmp_path / "out.fits")
    _, pixeldq, dq, _ = read(result.output)
    assert int(pixeldq[20, 30]) == HIGH_BITS and HIGH_BITS >= 1 << 16
    assert (dq[20, 30] == 0).all()  # no DO_NOT_USE there: DQ untouched


@pytest.mark.parametrize("name", sorted(GEOMETRY))
def test_the_asdf_tree_and_its_fits_hash_match_the_file(name, references, tmp_path):
    result = DQInitStep(override_dq=references[name]).run(sample(name),
                                                           output=tmp_path / "out.fits")
    tree = stored_tree(result.output)
    assert tree["hash_matches"]
    assert tree["meta"]["drs_step"]["dq_init"] == "COMPLETE"
    assert tree["meta"]["ref_file"]["data_quality"]["name"] == f"user:{references[name].name}"
    assert tree["meta"]["ref_file"]["crds"]["context_used"] == "N/A"
    assert tree["pixeldq"]["source"] == "fits:PIXELDQ,1"
    assert tree["pixeldq"]["datatype"] == "uint32"
    assert tree["pixeldq"]["shape"] == list(GEOMETRY[name][3])
    assert tree["meta"]["instrument"] == stored_tree(sample(name))["meta"]["instrument"]


def test_stdatamodels_opens_the_output_from_its_tree_with_the_new_content(references, tmp_path):
    from stdatamodels import DataModel

    name = "liger_img_custom_lvl0.fits"
    result = DQInitStep(override_dq=references[name]).run(sample(name),
                                                           output=tmp_path / "out.fits")
    with DataModel(str(result.output)) as model:
        assert model.meta.drs_step.dq_init == "COMPLETE"
        assert int(model.pixeldq[5, 7]) == DEAD_DNU
        assert (model.dq[5, 7] & DNU).all()


def test_the_default_full_test_ramp_of_64_by_64_is_refused_naming_both_shapes(references):
    with pytest.raises(RampFormatError) as error:
        DQInitStep(override_dq=references["iris_img1_custom_lvl0.fits"]).run(
            sample("iris_default_test_ramp_lvl0.fits"))
    message = str(error.value)
    assert "SUBARRAY = 'FULL'" in message and "64 x 64" in message and "4096 x 4096" in message


def test_liger_placeholder_detector_size_is_warned_about(references, tmp_path):
    name = "liger_img_custom_lvl0.fits"
    result = DQInitStep(override_dq=references[name]).run(sample(name),
                                                           output=tmp_path / "out.fits")
    assert any("2048 x 2048" in warning and "4096 x 4096" in warning
               for warning in result.warnings)


@pytest.mark.parametrize("name", sorted(GEOMETRY))
def test_each_sample_goes_through_the_cli(name, references, tmp_path):
    output = tmp_path / "cli.fits"
    outcome = CliRunner().invoke(app, ["run", str(sample(name)), "--override-dq",
                                       str(references[name]), "-o", str(output), "-j", "1"])
    assert outcome.exit_code == 0, outcome.output
    _, pixeldq, _, _ = read(output)
    assert int(pixeldq[5, 7]) == DEAD_DNU


def test_the_cli_refuses_the_default_test_ramp_in_one_line(references, tmp_path):
    outcome = CliRunner().invoke(app, ["run", str(sample("iris_default_test_ramp_lvl0.fits")),
                                       "--override-dq",
                                       str(references["iris_img1_custom_lvl0.fits"]),
                                       "--output-dir", str(tmp_path), "-j", "1"])
    assert outcome.exit_code != 0
    assert "SUBARRAY = 'FULL'" in outcome.output and "Traceback" not in outcome.output
    assert list(tmp_path.glob("*.fits")) == []


def test_in_place_updates_a_level0_ramp_and_keeps_the_tree_consistent(references, tmp_path):
    name = "iris_img1_custom_lvl0.fits"
    ramp = tmp_path / name
    shutil.copy(sample(name), ramp)
    ramp.chmod(0o644)  # the shared samples are read-only
    step = DQInitStep(override_dq=references[name])
    step.run(ramp, in_place=True)            # no PIXELDQ yet: rewritten atomically
    inode = ramp.stat().st_ino
    step.run(ramp, in_place=True)            # now both arrays exist: written in place
    assert ramp.stat().st_ino == inode
    _, pixeldq, dq, names = read(ramp)
    assert names.count("PIXELDQ") == 1 and int(pixeldq[5, 7]) == DEAD_DNU
    assert dq[0, 0, 0, 0] == 4 and (dq[5, 7] == DNU).all()
    assert stored_tree(ramp)["hash_matches"]


def test_override_na_skips_and_records_it_in_header_and_tree(tmp_path):
    name = "iris_img1_custom_lvl0.fits"
    result = DQInitStep(override_dq="N/A").run(sample(name), output=tmp_path / "out.fits")
    assert result.status == "SKIPPED"
    tree = stored_tree(result.output)
    assert tree["hash_matches"] and tree["meta"]["drs_step"]["dq_init"] == "SKIPPED"
    with fits.open(result.output) as hdulist:
        assert hdulist[0].header["S_DQINIT"] == "SKIPPED" and "PIXELDQ" not in hdulist


def test_the_stpipe_wrapper_takes_a_level0_path(references):
    pytest.importorskip("stpipe")
    from dqinit.stpipe_step import DQInitStpipeStep

    name = "liger_img_custom_lvl0.fits"
    model = DQInitStpipeStep.call(str(sample(name)), override_dq=str(references[name]))
    assert model.meta.drs_step.dq_init == "COMPLETE"
    assert int(model.pixeldq[5, 7]) == DEAD_DNU


def test_crds_selects_by_expdtst_and_either_detector_name(tmp_path):
    """The samples have no DATE-OBS: their EXPDTST picks the reference; a reference made
    under the alias IRIS1 serves a ramp that says IMG1."""
    from support import cache_with, full_frame_reference

    old = full_frame_reference(tmp_path / "old.fits", "IRIS1", useafter="2020-01-01",
                               flags={"HOT": [(2048 + 5, 1024 + 7)]})
    new = full_frame_reference(tmp_path / "new.fits", "IMG1", useafter="2025-07-01",
                               flags={"DEAD": [(2048 + 5, 1024 + 7)]})
    liger = full_frame_reference(tmp_path / "liger.fits", "IMG", instrument="LIGER",
                                 useafter="2020-01-01", flags={"DEAD": [(16 + 5, 1200 + 7)]})
    cache = cache_with(tmp_path / "cache", old, new, liger)
    step = DQInitStep(crds_path=cache.root)

    iris = step.run(sample("iris_img1_custom_lvl0.fits"), output=tmp_path / "iris.fits")
    keck = step.run(sample("liger_img_custom_lvl0.fits"), output=tmp_path / "liger_out.fits")

    assert iris.status == keck.status == "COMPLETE"
    assert iris.reference == "crds://iris_dq_0001.fits"   # EXPDTST 2025-06-01: the old one
    assert int(read(iris.output)[1][5, 7]) == HOT
    assert keck.reference == "crds://liger_dq_0001.fits"
    assert int(read(keck.output)[1][5, 7]) == flags.value("DEAD")
    header = read(iris.output)[0]
    assert header["R_DQ"] == iris.reference and header["CRDS_CTX"] == iris.context
    tree = stored_tree(iris.output)
    assert tree["meta"]["ref_file"]["crds"]["context_used"] == iris.context
