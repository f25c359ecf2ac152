"""The step's outputs are byte-identical to those of the first streaming writer (issue 15).

The digests below were recorded by running this file's cases at commit 8863039, before
any speed work: every later change to the writer (file holes, fewer copies, lazy imports)
must leave the bytes of every output as they were. The inputs are small ramps of both
layouts with fixed content (no random numbers), and their own digests are pinned too, so
a failure says whether the input or the step changed.

Normalised bytes, and only these: inside the level-0 ``ASDF`` table, the ``asdf_library``
and ``history`` nodes that the asdf library writes about itself (its version, the
extensions it used). They are not ours and change with an asdf upgrade; the table is
replaced by its YAML text without those two nodes before hashing. No output carries a
timestamp (no DATE keyword, no history entry with a time), so nothing else is touched;
``_fits_hash`` is hashed as written.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from support import cache_with, full_frame_reference, jwst_style_mask, subarray_reference

from dqinit.simulate import level0_header, ramp_header, write_level0_ramp
from dqinit.step import DQInitStep

#: What asdf writes about itself: top-level YAML nodes and their indented lines.
_WRITER_NODES = re.compile(rb"^(asdf_library|history):.*\n(?:[ \-].*\n)*", re.MULTILINE)

INPUT_DIGESTS = {
    "jwst_plain":
        "749352ba60a82ee261c66013883b0c8c6f50a9b3a3cf58962ffea725682361dd",
    "jwst_with_dq":
        "275a0e20d6e1b5d7a7e4e4053aaf5e87c1c9053db91200f67dd8529b0b045569",
    "jwst_iris3":
        "52a553a054f6fe2bf01b8556ca48630d37ceb506f5d2302b9351a599ff21db95",
    "jwst_wide":
        "896d98fe6d42920d6237284f03c1ecddc39ee56919936dd2362426560af50151",
    "jwst_wide_with_dq":
        "fefbddd40ed66e26305d8dc3c9e04f2773a05cb1463b06c5a631b37b0230bf25",
    "level0_plain":
        "8c78353944ae46125d9818b0b787f60ba40cef8c18771ba604e7884542740c45",
    "level0_without_dq":
        "e971eaee790b6cdae1d9befad439b26902c48587aef0c4f1fa672192083949e2",
    "level0_iris3":
        "17bbb5d406133ae340f44d37b75e85a997c54f8b26be2aa173fdc7d17c9a418d",
}

OUTPUT_DIGESTS = {
    "jwst_override_subarray_reference":
        "4adb08666ace5d9e7db770d95208c8979392feb15b8b56b908bbed8828951ddc",
    "jwst_existing_pixeldq_groupdq_err_asdf":
        "5977714725ca59db6d3d95ea3bef90f7ef37163476546970bc2e50e3921a80dd",
    "jwst_user_dq":
        "5064e20f618c3be4fa2303340dca883146d2875a4750b3309aa74ad083ac3816",
    "jwst_crds_lookup":
        "7494a93ef67d79cc1d5e67882f6a0654e1891a97d1d00be8f37023819f14878f",
    "jwst_translated_jwst_mask":
        "947be0d3e279e970a95a70e1e85bd2dcfa4963c72df4d6c63774caf63c6357a8",
    "jwst_skipped_na":
        "a53be6cf99992f550775d44a2dae82da03e941af3598c55763288263b6c410ed",
    "jwst_skipped_no_rule":
        "37bad68daf07014d5452f1546279890c903ef27154ff8a2fe8c066ec345eeb25",
    "jwst_in_place_both_arrays":
        "9d41745e701834c9398af1cbdbabdf4e8505bf6385de963fcd772c1b4710ddba",
    "jwst_in_place_rewrite":
        "4adb08666ace5d9e7db770d95208c8979392feb15b8b56b908bbed8828951ddc",
    "jwst_crowded":
        "3ed3de6a866a04ece69b068ba5f658d35a92df7dd80b370b62de7484fba190bd",
    "jwst_crowded_existing_dq":
        "8ee7b375808ea120026b88f0a08448cd29bb63344594ab2e5792c6f09ae24fdf",
    "jwst_crowded_in_place":
        "b71a8b7762cf382cac90b116a2d716d0b53d9715dcce7e02fc087bec0b887c83",
    "jwst_wide_crds_lookup":
        "49f08878c51f3807375e1eebda9f87da71a773cbbcaafeadc7946cb810e7cec8",
    "jwst_wide_no_do_not_use":
        "8a43f86165b250fc955c9ef0ea30a24585c059d946308f5290bac0b3d7009dd7",
    "jwst_wide_existing_dq":
        "5d5fef854511bb8c89c125feb454582b88ce20586bae6b3bd944b2daf0e333db",
    "jwst_wide_in_place_both_arrays":
        "157ff90fd2ec2ccbe414552a79e983dc98387eebda8affb3059ebe01d117c332",
    "level0_override_subarray_reference":
        "09622ab1439cae506e1ab041ddbb2d95b4d9b4c508e418a2fcea3a3becab7516",
    "level0_second_run_existing_pixeldq":
        "976a52fc0c6a8bb2cd2314d956bf230f754263f8eedd9196d4322fb46a9a81b1",
    "level0_crowded":
        "cbffaabd6d0c2aaef9eecb3ff4fa508048a1951c851e3afabf103ffdf4328792",
    "level0_crowded_second_run":
        "fe0e1de4a0e66d32207df8f787f2f6749953e59ad08ff75a7131ebc99840a466",
    "level0_crowded_in_place":
        "fe0e1de4a0e66d32207df8f787f2f6749953e59ad08ff75a7131ebc99840a466",
    "level0_dq_created":
        "e5a9bccbbdeaf196470bb5f912e35e09a5b828a15cf0075af5864cbbff87c6b3",
    "level0_user_dq":
        "9a8b8a1514be8bbaaec01ed914934f5f9922345116812f77202d915700a3ba02",
    "level0_crds_lookup":
        "44fb9e9b0312bab20985cbcbe3ab616876ea09c4032eedc0fdb4fad2566f48f8",
    "level0_skipped_na":
        "b364a4e4756bc5f7e9aa096c8a533e17b11b9ab2f40437813fe52bbd286ba969",
    "level0_skipped_no_rule":
        "d129bb6935c41483b230a56710914504e2d449a447830319f4db4a8c184a6e1b",
    "level0_in_place_both_arrays":
        "699be3d227c611d891a2c29a196f07c9b16b8013d04ac60c85d64b8b3e0b8faa",
    "level0_in_place_rewrite":
        "09622ab1439cae506e1ab041ddbb2d95b4d9b4c508e418a2fcea3a3becab7516",
}


def normalised_digest(path: Path) -> str:
    """SHA-256 of the file, the asdf library's own nodes taken out of a level-0 tree."""
    data = path.read_bytes()
    with fits.open(path) as hdulist:
        spans = [(hdu.name, hdulist.fileinfo(index)) for index, hdu in enumerate(hdulist)]
    pieces = []
    for name, info in spans:
        start, end = info["hdrLoc"], info["datLoc"] + info["datSpan"]
        piece = data[start:end]
        tree = data[info["datLoc"]:end]
        if name == "ASDF" and tree.startswith(b"#ASDF"):
            piece = _WRITER_NODES.sub(b"", tree.rstrip(b"\0 "))
        pieces.append(piece)
    assert sum(info["datLoc"] + info["datSpan"] - info["hdrLoc"] for _, info in spans) == \
        len(data)
    return hashlib.sha256(b"".join(pieces)).hexdigest()


# -- inputs: fixed content, no random numbers ----------------------------------------------
def jwst_ramp(path: Path, with_dq: bool, detector: str = "IRIS1",
              shape=(2, 3, 24, 32), origin_xy=(105, 203)) -> Path:
    """A SCI ramp of ``shape`` at SUBSTRT1/2 = ``origin_xy``; with DQ arrays, ERR and ASDF."""
    rows, columns = shape[-2:]
    header = ramp_header("IRIS", detector, subarray=(f"SUB{columns}", *origin_xy, columns,
                                                     rows))
    sci = (np.arange(np.prod(shape), dtype=np.float32) * 0.25).reshape(shape)
    hdus = [fits.PrimaryHDU(header=header), fits.ImageHDU(sci, name="SCI")]
    if with_dq:
        pixeldq = np.zeros(shape[-2:], np.uint32)
        pixeldq[3, 4] = 1 << 20
        pixeldq[10, 11] = 2
        groupdq = np.zeros(shape, np.uint8)
        groupdq[1 % shape[0], 2, 5, 6] = 4
        groupdq[0, 0, 3, 4] = 2
        err = np.full(shape, 0.5, np.float32)
        asdf_table = fits.BinTableHDU.from_columns(
            [fits.Column("ASDF_METADATA", "10B", array=np.arange(10, dtype=np.uint8)[None])],
            name="ASDF")
        hdus += [fits.ImageHDU(pixeldq, name="PIXELDQ"), fits.ImageHDU(groupdq, name="GROUPDQ"),
                 fits.ImageHDU(err, name="ERR"), asdf_table]
    fits.HDUList(hdus).writeto(path)
    return path


def level0_ramp(path: Path, detector: str = "IMG1") -> Path:
    """A (16, 24, 3, 2) level-0 ramp at SUBSTRT1/2 = 105/203 with two existing DQ flags."""
    header = level0_header("IRIS", detector, subarray=("CUSTOM", 105, 203, 24, 16))
    return write_level0_ramp(path, header, ngroups=3, nreads=2,
                             dq={(1, 2, 0, 1): 4, (3, 4, 2, 0): 1})


def level0_without_dq(path: Path) -> Path:
    """The level-0 ramp with its DQ extension removed (the step creates one)."""
    source = level0_ramp(path.with_name("with_dq_" + path.name))
    with fits.open(source) as hdulist:
        del hdulist["DQ"]
        hdulist.writeto(path)
    return path


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Every input, reference and cache, once; {name: path}."""
    folder = tmp_path_factory.mktemp("byte_identical")
    flagged = {"DEAD|DO_NOT_USE": [(2, 4), (9, 7), (20, 30)], "HOT": [(5, 5), (12, 40)],
               "LOW_QE": [(3, 8)]}
    reference = subarray_reference(folder / "sub_ref.fits", origin_xy=(101, 201), size=64,
                                   flags=flagged)
    full = full_frame_reference(folder / "full_ref.fits", "IRIS1", flags={
        "DEAD|DO_NOT_USE": [(204, 108), (210, 120)], "HOT": [(205, 106)]})
    cache = cache_with(folder / "crds_cache", full)
    # DO_NOT_USE on every third pixel: the step touches most of GROUPDQ and DQ.
    crowded = subarray_reference(folder / "crowded_ref.fits", origin_xy=(101, 201), size=64,
                                 flags={"DEAD|DO_NOT_USE": [(y, x) for y in range(64)
                                                            for x in range(y % 3, 64, 3)]})
    # Covers the wide ramp; no DO_NOT_USE at all, so its GROUPDQ stays zero.
    hot_only = subarray_reference(folder / "hot_ref.fits", origin_xy=(101, 201), size=256,
                                  flags={"HOT": [(3, 3), (100, 200)]})
    mask = jwst_style_mask(folder / "jwst_mask.fits", (4096, 4096), (206, 110),
                           {"INSTRUME": "IRIS", "DETECTOR": "IRIS1"})
    user = np.zeros((24, 32), np.uint32)
    user[1, 1] = 1 | 2048
    user[7, 9] = 4096
    fits.PrimaryHDU(user).writeto(folder / "user_jwst.fits")
    fits.PrimaryHDU(user[:16, :24].copy()).writeto(folder / "user_level0.fits")
    return {
        "folder": folder, "reference": reference, "cache": cache.root, "mask": mask,
        "hot_only": hot_only, "crowded": crowded,
        "user_jwst": folder / "user_jwst.fits", "user_level0": folder / "user_level0.fits",
        "jwst_plain": jwst_ramp(folder / "jwst_plain.fits", with_dq=False),
        "jwst_with_dq": jwst_ramp(folder / "jwst_with_dq.fits", with_dq=True),
        "jwst_iris3": jwst_ramp(folder / "jwst_iris3.fits", with_dq=False, detector="IRIS3"),
        # 32 kB image planes: GROUPDQ has whole pages of zeros
        "jwst_wide": jwst_ramp(folder / "jwst_wide.fits", with_dq=False, shape=(1, 3, 128, 256),
                               origin_xy=(101, 201)),
        "jwst_wide_with_dq": jwst_ramp(folder / "jwst_wide_with_dq.fits", with_dq=True,
                                       shape=(1, 3, 128, 256), origin_xy=(101, 201)),
        "level0_plain": level0_ramp(folder / "level0_plain.fits"),
        "level0_without_dq": level0_without_dq(folder / "level0_without_dq.fits"),
        "level0_iris3": level0_ramp(folder / "level0_iris3.fits", detector="IMG3"),
    }


# -- the cases: (input, step options, in place) ---------------------------------------------
CASES = {
    "jwst_override_subarray_reference": ("jwst_plain", {"override_dq": "reference"}, False),
    "jwst_existing_pixeldq_groupdq_err_asdf": ("jwst_with_dq", {"override_dq": "reference"},
                                               False),
    "jwst_user_dq": ("jwst_plain", {"override_dq": "reference", "user_dq": "user_jwst"},
                     False),
    "jwst_crds_lookup": ("jwst_plain", {"crds_path": "cache"}, False),
    "jwst_translated_jwst_mask": ("jwst_plain", {"override_dq": "mask"}, False),
    "jwst_skipped_na": ("jwst_with_dq", {"override_dq": "N/A"}, False),
    "jwst_skipped_no_rule": ("jwst_iris3", {"crds_path": "cache"}, False),
    "jwst_in_place_both_arrays": ("jwst_with_dq", {"override_dq": "reference"}, True),
    "jwst_in_place_rewrite": ("jwst_plain", {"override_dq": "reference"}, True),
    "jwst_crowded": ("jwst_plain", {"override_dq": "crowded"}, False),
    "jwst_crowded_existing_dq": ("jwst_with_dq", {"override_dq": "crowded"}, False),
    "jwst_crowded_in_place": ("jwst_with_dq", {"override_dq": "crowded"}, True),
    "jwst_wide_crds_lookup": ("jwst_wide", {"crds_path": "cache"}, False),
    "jwst_wide_no_do_not_use": ("jwst_wide", {"override_dq": "hot_only"}, False),
    "jwst_wide_existing_dq": ("jwst_wide_with_dq", {"crds_path": "cache"}, False),
    "jwst_wide_in_place_both_arrays": ("jwst_wide_with_dq", {"crds_path": "cache"}, True),
    "level0_override_subarray_reference": ("level0_plain", {"override_dq": "reference"},
                                           False),
    "level0_second_run_existing_pixeldq": ("level0_override_subarray_reference",
                                           {"override_dq": "mask"}, False),
    "level0_dq_created": ("level0_without_dq", {"override_dq": "reference"}, False),
    "level0_crowded": ("level0_plain", {"override_dq": "crowded"}, False),
    "level0_crowded_second_run": ("level0_override_subarray_reference",
                                  {"override_dq": "crowded"}, False),
    "level0_crowded_in_place": ("level0_override_subarray_reference",
                                {"override_dq": "crowded"}, True),
    "level0_user_dq": ("level0_plain", {"override_dq": "reference", "user_dq": "user_level0"},
                       False),
    "level0_crds_lookup": ("level0_plain", {"crds_path": "cache"}, False),
    "level0_skipped_na": ("level0_plain", {"override_dq": "N/A"}, False),
    "level0_skipped_no_rule": ("level0_iris3", {"crds_path": "cache"}, False),
    "level0_in_place_both_arrays": ("level0_override_subarray_reference",
                                    {"override_dq": "mask", "user_dq": "user_level0"}, True),
    "level0_in_place_rewrite": ("level0_plain", {"override_dq": "reference"}, True),
}


def run_case(case: str, made: dict, folder: Path) -> Path:
    """Run one case into ``folder``; return the file the step wrote."""
    source_name, options, in_place = CASES[case]
    source = made.get(source_name) or run_case(source_name, made, folder / source_name)
    options = {key: value if value == "N/A" else made[value] for key, value in options.items()}
    folder.mkdir(parents=True, exist_ok=True)
    step = DQInitStep(**options)
    if in_place:
        target = shutil.copyfile(source, folder / f"{case}.fits")
        return step.run(target, in_place=True).output
    return step.run(source, output=folder / f"{case}.fits").output


@pytest.mark.parametrize("name", sorted(INPUT_DIGESTS))
def test_the_inputs_are_the_recorded_ones(name, made):
    assert normalised_digest(made[name]) == INPUT_DIGESTS[name]


@pytest.mark.parametrize("case", sorted(OUTPUT_DIGESTS))
def test_the_output_is_byte_identical_to_the_recorded_one(case, made, tmp_path):
    output = run_case(case, made, tmp_path)
    assert normalised_digest(output) == OUTPUT_DIGESTS[case]
