"""Hostile references (issue 13, the reading side).

Every malformed reference is refused with one line that names the file and what is wrong,
before any of its data is read; nothing is reinterpreted or applied half-understood. The
files are real FITS files in ``tmp_path``; where astropy refuses to write the defect, a
valid file is written and its header bytes are patched in place (80-character cards,
2880-byte blocks kept).
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
from astropy.io import fits
from support import cache_with, sub_ramp
from typer.testing import CliRunner

from dqinit.cli import app as dqinit_app
from dqref import DQModel, flags
from dqref.cli import app as dqref_app
from dqref.console import user_errors
from dqref.errors import DQDefError, ReferenceFileError, writing
from dqref.model import Subarray
from dqref.reffile import to_hdulist

runner = CliRunner()
ORIGIN = (101, 201)  # SUBSTRT1, SUBSTRT2 of the small reference
BIN = Path(sys.executable).parent


# -- files ------------------------------------------------------------------------------------
def small_model() -> DQModel:
    """A valid IRIS1 SUB64 reference with one DEAD|DO_NOT_USE pixel at (y=3, x=4)."""
    model = DQModel(np.zeros((64, 64), np.uint32), name="IRIS", detector="IRIS1",
                    useafter="2020-01-01", description="a small mask", author="tester")
    model.meta.subarray = Subarray("SUB64", *ORIGIN, 64, 64)
    model.flag([[3, 4]], "DEAD|DO_NOT_USE")
    return model


def plain_reference(path: Path, model: DQModel | None = None, dq_def=None,
                    replace: dict | None = None) -> Path:
    """Write a reference with plain astropy and no checksums (as JWST MASK files come).

    ``dq_def`` replaces the DQ_DEF table (rows of BIT, VALUE, NAME, DESCRIPTION, or an
    HDU); ``replace`` maps an extension name to the HDU that takes its place.
    """
    hdulist = to_hdulist(model or small_model())
    if dq_def is not None:
        hdulist["DQ_DEF"] = dq_def if isinstance(dq_def, fits.hdu.base.ExtensionHDU) else \
            fits.BinTableHDU(np.array(dq_def, dtype=flags.DQ_DEF_DTYPE), name="DQ_DEF")
    for name, hdu in (replace or {}).items():
        hdulist[name] = hdu
    hdulist.writeto(path)
    return path


def patch_cards(path: Path, patches: dict[tuple[int, str], bytes]) -> Path:
    """Overwrite header cards in place: ``{(hdu index, keyword): new 80-byte card}``."""
    with fits.open(path) as hdulist:
        headers = [(hdulist.fileinfo(i)["hdrLoc"], hdulist.fileinfo(i)["datLoc"])
                   for i in range(len(hdulist))]
    raw = bytearray(path.read_bytes())
    for (index, keyword), card in patches.items():
        start, end = headers[index]
        at = next(offset for offset in range(start, end, 80)
                  if raw[offset:offset + 8].rstrip() == keyword.encode())
        raw[at:at + 80] = card.ljust(80, b" ")
    assert len(raw) % 2880 == 0
    path.write_bytes(bytes(raw))
    return path


def table(*columns) -> fits.BinTableHDU:
    return fits.BinTableHDU.from_columns(list(columns), name="DQ_DEF")


STANDARD_ROWS = [(0, 1, "DO_NOT_USE", ""), (10, 1024, "DEAD", ""), (11, 2048, "HOT", "")]


# -- running the commands ---------------------------------------------------------------------
def assert_one_line_error(result, *words: str, code: int = 2) -> str:
    """The command failed with one line on stderr holding ``words``, and no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def run_script(program: str, *args, timeout: float = 60, limits=()) -> subprocess.CompletedProcess:
    """Run an installed console script in a real process (real stdin/stderr, real limits)."""

    def set_limits():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a too-large write fails with EFBIG
        for which, value in limits:
            resource.setrlimit(which, (value, value))

    return subprocess.run([str(BIN / program), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, preexec_fn=set_limits,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})


def assert_one_line_process_error(done: subprocess.CompletedProcess, *words: str,
                                  code: int = 2) -> str:
    assert done.returncode == code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def read_error(path: Path, kind=ReferenceFileError) -> str:
    """Read ``path``; return the one-line message of the ``kind`` error it must raise."""
    with pytest.raises(kind) as raised:
        DQModel.read(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message


@pytest.fixture(scope="module")
def ramp(tmp_path_factory):
    """A small raw ramp on the reference's pixels."""
    return sub_ramp(tmp_path_factory.mktemp("ramp") / "ramp.fits", origin_xy=ORIGIN)


# -- issue 3: a DQ_DEF that cannot be trusted is refused, whatever the route ------------------
BROKEN_DQ_DEFS = {
    "value-not-two-to-the-bit": ([(0, 1, "DO_NOT_USE", ""), (10, 1025, "DEAD", "")],
                                 "DQ_DEF row 2 (DEAD): VALUE 1025 != 2**BIT = 1024"),
    "two-names-on-one-bit": ([(0, 1, "DO_NOT_USE", ""), (10, 1024, "DEAD", ""),
                              (10, 1024, "HOT", "")],
                             "DQ_DEF row 3 (HOT): BIT 10 is also defined in row 2"),
    "one-name-on-two-bits": ([(0, 1, "DO_NOT_USE", ""), (1, 2, "DEAD", ""),
                              (10, 1024, "DEAD", "")],
                             "DQ_DEF row 3 (DEAD): NAME DEAD is also defined in row 2"),
    "bit-outside-0-to-31": ([(0, 1, "DO_NOT_USE", ""), (40, 1024, "DEAD", "")],
                            "DQ_DEF row 2 (DEAD): BIT 40 is outside 0..31"),
    "a-name-and-its-alias": ([(8, 256, "RESERVED", ""), (10, 1024, "UNRELIABLE_ERROR", "")],
                             "DQ_DEF row 2 (UNRELIABLE_ERROR): NAME UNRELIABLE_ERROR is the "
                             "flag RESERVED of row 1"),
}


@pytest.mark.parametrize("case", list(BROKEN_DQ_DEFS))
def test_a_dq_def_that_cannot_be_trusted_is_refused_by_the_reader(tmp_path, case):
    rows, words = BROKEN_DQ_DEFS[case]
    path = plain_reference(tmp_path / "ref.fits", dq_def=rows)
    message = read_error(path, DQDefError)
    assert f"DQ_DEF cannot be trusted: {words}" in message


@pytest.mark.parametrize("case", list(BROKEN_DQ_DEFS))
def test_translation_table_refuses_a_dq_def_that_cannot_be_trusted(case):
    rows, words = BROKEN_DQ_DEFS[case]
    with pytest.raises(DQDefError, match="DQ_DEF cannot be trusted: ") as raised:
        flags.translation_table(np.array(rows, dtype=flags.DQ_DEF_DTYPE))
    assert words in str(raised.value)
    assert issubclass(DQDefError, ReferenceFileError)


def test_validation_reports_an_untrusted_dq_def_and_runs_no_semantic_rule_on_it():
    model = small_model()
    model.dq_def = np.array(BROKEN_DQ_DEFS["two-names-on-one-bit"][0], dtype=flags.DQ_DEF_DTYPE)
    assert [(f.rule, f.where, f.message) for f in model.validate()] == [
        ("dq-def-consistent", "DQ_DEF row 3 (HOT)", "BIT 10 is also defined in row 2")]


def test_override_dq_with_an_untrusted_dq_def_fails_the_ramp_and_writes_nothing(tmp_path, ramp):
    bad = plain_reference(tmp_path / "ref.fits", dq_def=BROKEN_DQ_DEFS["two-names-on-one-bit"][0])
    out = tmp_path / "out.fits"
    result = runner.invoke(dqinit_app, ["run", str(ramp), "--override-dq", str(bad),
                                        "-o", str(out), "-j", "1"])
    line = assert_one_line_error(result, "FAILED", str(bad), "BIT 10 is also defined in row 2",
                                 code=1)
    assert "COMPLETE" not in result.output and "Error:" not in line
    assert not out.exists()


@pytest.mark.parametrize("command", ["validate", "histogram", "show", "diff", "cache add"])
def test_every_dqref_command_refuses_an_untrusted_dq_def_in_one_line(tmp_path, command):
    bad = plain_reference(tmp_path / "ref.fits", dq_def=BROKEN_DQ_DEFS["one-name-on-two-bits"][0])
    assert_one_line_error(invoke_dqref(command, bad, tmp_path), str(bad),
                          "NAME DEAD is also defined in row 2")
    assert not list((tmp_path / "cache").rglob("*.fits"))


def invoke_dqref(command: str, path: Path, tmp_path: Path):
    """Run one of the dqref commands that read a reference on ``path``."""
    good = plain_reference(tmp_path / "good.fits")
    arguments = {"validate": ["validate", path], "histogram": ["histogram", path],
                 "show": ["show", path, "--png", tmp_path / "mask.png"],
                 "diff": ["diff", path, good],
                 "cache add": ["cache", "add", path, "--path", tmp_path / "cache",
                               "--no-roundtrip"]}[command]
    return runner.invoke(dqref_app, [str(a) for a in arguments])


# -- issue 8: non-integer geometry, scaled or floating-point DQ --------------------------------
@pytest.mark.parametrize(("keyword", "card", "shown"), [
    ("SUBSTRT1", b"SUBSTRT1=                  1.5", "1.5"),
    ("SUBSTRT2", b"SUBSTRT2= '201'", "'201'"),
    ("SUBSIZE1", b"SUBSIZE1=                    T", "True"),
    ("SUBSIZE2", b"SUBSIZE2=                 63.9", "63.9"),
])
def test_a_non_integer_subarray_keyword_is_refused_not_truncated(tmp_path, keyword, card, shown):
    path = patch_cards(plain_reference(tmp_path / "ref.fits"), {(0, keyword): card})
    assert f"{keyword} = {shown} is not a whole number" in read_error(path)


def test_an_integral_float_subarray_keyword_is_read_as_its_integer(tmp_path):
    path = patch_cards(plain_reference(tmp_path / "ref.fits"),
                       {(0, "SUBSTRT1"): b"SUBSTRT1=                101.0"})
    subarray = DQModel.read(path).meta.subarray
    assert (subarray.xstart, type(subarray.xstart)) == (101, int)


@pytest.mark.parametrize(("keyword", "card", "words"), [
    ("BSCALE", b"BSCALE  =                    2", "scaled (BSCALE = 2, BZERO = 2147483648)"),
    ("BZERO", b"BZERO   =               1000.0", "scaled (BSCALE = 1, BZERO = 1000.0)"),
    ("BITPIX", b"BITPIX  =                  -32", "BITPIX = -32 is floating point"),
])
def test_a_dq_image_outside_the_integer_conventions_is_refused(tmp_path, keyword, card, words):
    path = patch_cards(plain_reference(tmp_path / "ref.fits"), {(1, keyword): card})
    assert f"HDU 1 (DQ): {words}; DQ flags must be stored as integers" in read_error(path)


def test_a_dq_written_as_float_by_astropy_is_refused(tmp_path):
    model = small_model()
    hdulist = to_hdulist(model)
    hdulist["DQ"] = fits.ImageHDU(model.dq.astype(np.float64), name="DQ")
    hdulist.writeto(tmp_path / "ref.fits")
    assert "BITPIX = -64 is floating point" in read_error(tmp_path / "ref.fits")


def test_a_dq_whose_bzero_card_was_dropped_is_read_as_the_signed_integers_it_declares(tmp_path):
    path = patch_cards(plain_reference(tmp_path / "ref.fits"),
                       {(1, "BZERO"): b"COMMENT   BZERO dropped"})
    assert "DQ has a negative value" in read_error(path)


def test_a_signed_16_bit_dq_is_read_exactly(tmp_path):
    model = small_model()
    signed = np.zeros((64, 64), np.int16)
    signed[3, 4], signed[5, 6] = 1025, 2048 | 1
    path = plain_reference(tmp_path / "ref.fits", model,
                           replace={"DQ": fits.ImageHDU(signed, name="DQ")})
    dq = DQModel.read(path).dq
    assert dq.dtype == np.uint32 and np.array_equal(dq, signed.astype(np.uint32))


def test_every_uint32_bit_pattern_reads_back_exactly_as_astropy_reads_it(tmp_path):
    model = small_model()
    patterns = np.array([0, 1, 2**31 - 1, 2**31, 2**31 + 1, 2**32 - 1, 0x55555555, 0xAAAAAAAA],
                        np.uint32)
    model.dq[0, :patterns.size] = patterns
    hdulist = to_hdulist(model)
    hdulist.writeto(tmp_path / "ref.fits", checksum=True)
    dq = DQModel.read(tmp_path / "ref.fits").dq
    assert dq.dtype == np.uint32 and dq.flags.c_contiguous
    assert np.array_equal(dq[0, :patterns.size], patterns)
    assert np.array_equal(dq, fits.getdata(tmp_path / "ref.fits", "DQ"))


# -- issue 10: malformed references, one line each ---------------------------------------------
def bitpix_13(path):
    return patch_cards(plain_reference(path), {(1, "BITPIX"): b"BITPIX  =                   13"})


def descrip_with(byte: bytes):
    def make(path):
        return patch_cards(plain_reference(path),
                           {(0, "DESCRIP"): b"DESCRIP = 'a small" + byte + b"mask'"})
    return make


def dq_def_without(column: str):
    def make(path):
        columns = {"BIT": fits.Column("BIT", "J", array=[10]),
                   "VALUE": fits.Column("VALUE", "J", array=[1024]),
                   "NAME": fits.Column("NAME", "20A", array=["DEAD"])}
        return plain_reference(path, dq_def=table(*(c for n, c in columns.items() if n != column)))
    return make


def dq_def_value_2_40(path):
    return plain_reference(path, dq_def=table(
        fits.Column("BIT", "J", array=[0, 10]), fits.Column("VALUE", "K", array=[1, 2**40]),
        fits.Column("NAME", "20A", array=["DO_NOT_USE", "DEAD"])))


def dq_def_as_image(path):
    return plain_reference(path, dq_def=fits.ImageHDU(np.zeros((3, 4), np.int32), name="DQ_DEF"))


MALFORMED = {
    "bitpix-13": (bitpix_13, "HDU 1 (DQ): BITPIX = 13 is not a FITS pixel type"),
    "newline-in-a-card": (descrip_with(b"\n"), "HDU 0 (PRIMARY): card DESCRIP holds a newline "
                                               "(0x0a) at column 19"),
    "nul-in-a-card": (descrip_with(b"\0"), "card DESCRIP holds a NUL byte (0x00) at column 19"),
    "tab-in-a-card": (descrip_with(b"\t"), "card DESCRIP holds a tab (0x09) at column 19"),
    "non-ascii-descrip": (descrip_with("é".encode()), "card DESCRIP holds a non-ASCII byte "
                                                      "(0xc3) at column 19"),
    "dq-def-without-bit": (dq_def_without("BIT"), "DQ_DEF has no BIT column"),
    "dq-def-without-name": (dq_def_without("NAME"), "DQ_DEF has no NAME column"),
    "dq-def-value-2-40": (dq_def_value_2_40, "DQ_DEF row 2 (DEAD): VALUE 1099511627776 does "
                                             "not fit in 32 bits"),
    "dq-def-as-image": (dq_def_as_image, "HDU 2 (DQ_DEF) is an image; DQ_DEF must be a binary "
                                         "table"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_reference_is_one_reference_file_error_naming_file_and_problem(tmp_path,
                                                                                   case):
    make, words = MALFORMED[case]
    assert words in read_error(make(tmp_path / "ref.fits"))


@pytest.mark.parametrize("command", ["validate", "histogram", "show", "diff", "cache add"])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_every_dqref_command_refuses_a_malformed_reference_in_one_line(tmp_path, case, command):
    make, words = MALFORMED[case]
    path = make(tmp_path / "ref.fits")
    assert_one_line_error(invoke_dqref(command, path, tmp_path), str(path), words)
    assert not list((tmp_path / "cache").rglob("*.fits"))  # nothing copied into a cache


@pytest.mark.parametrize("case", list(MALFORMED))
def test_dqinit_override_dq_with_a_malformed_reference_fails_in_one_line(tmp_path, ramp, case):
    make, words = MALFORMED[case]
    path = make(tmp_path / "ref.fits")
    result = runner.invoke(dqinit_app, ["run", str(ramp), "--override-dq", str(path),
                                        "-o", str(tmp_path / "out.fits"), "-j", "1"])
    line = assert_one_line_error(result, "FAILED", words, code=1)
    assert "Error" not in line.split("FAILED:")[1]  # no exception class: a user error


def test_a_non_ascii_descrip_is_refused_and_never_copied_into_the_cache(tmp_path):
    path = descrip_with("ü".encode())(tmp_path / "ref.fits")
    cache = cache_with(tmp_path / "cache")
    with pytest.raises(ReferenceFileError, match="card DESCRIP holds a non-ASCII byte"):
        cache.add(path)
    assert cache.references() == []


def test_a_control_byte_inside_a_keyword_keeps_the_message_one_line(tmp_path):
    # found by tests/test_fuzz.py: the keyword itself was printed with its newline
    path = patch_cards(plain_reference(tmp_path / "ref.fits"),
                       {(0, "NAXIS"): b"N\nXIS   =                    0"})
    assert "HDU 0 (PRIMARY): card N\\x0aXIS holds a newline (0x0a) at column 2" in \
        read_error(path)


def test_a_card_that_astropy_cannot_parse_is_refused_naming_it(tmp_path):
    path = patch_cards(plain_reference(tmp_path / "ref.fits"),
                       {(0, "DESCRIP"): b"DESCRIP = 'never closed"})
    assert "HDU 0 (PRIMARY): card DESCRIP cannot be parsed" in read_error(path)


def test_a_file_that_says_it_is_not_fits_is_refused(tmp_path):
    # found by tests/test_fuzz.py: astropy then returns an HDU without fileinfo()
    path = patch_cards(plain_reference(tmp_path / "ref.fits"),
                       {(0, "SIMPLE"): b"SIMPLE  =                    F"})
    assert "SIMPLE = False: the file says it does not conform to FITS" in read_error(path)


def test_a_column_name_that_is_a_number_is_one_reference_file_error(tmp_path):
    # found by tests/test_fuzz.py: astropy raised AssertionError reading the table
    path = patch_cards(plain_reference(tmp_path / "ref.fits"),
                       {(2, "TTYPE1"): b"TTYPE1  =                    5"})
    assert "cannot be read as FITS (AssertionError: Column name must be a string" in \
        read_error(path)


def test_a_column_scaling_astropy_cannot_apply_is_one_reference_file_error(tmp_path):
    # found by tests/test_fuzz.py: astropy converts VALUE when it is first read
    path = patch_cards(plain_reference(tmp_path / "ref.fits"),
                       {(2, "TZERO2"): b"TZERO2  = 'IMAGE   '"})
    assert "DQ_DEF column VALUE cannot be read (UFuncTypeError: " in read_error(path)


def test_two_dq_extensions_are_refused_not_guessed(tmp_path):
    model = small_model()
    path = plain_reference(tmp_path / "ref.fits", model)
    with fits.open(path, mode="append") as hdulist:
        hdulist.append(fits.ImageHDU(model.dq, name="DQ"))
    assert "2 extensions are named DQ" in read_error(path)


def test_a_dq_stored_as_a_table_is_refused(tmp_path):
    path = plain_reference(tmp_path / "ref.fits", replace={"DQ": fits.BinTableHDU.from_columns(
        [fits.Column("DQ", "J", array=[1, 2])], name="DQ")})
    assert "HDU 1 (DQ) is a table; DQ must be a 2D image" in read_error(path)


# -- issue 11: declared sizes are checked before anything is allocated -------------------------
def read_in_small_address_space(path: Path) -> subprocess.CompletedProcess:
    """Read ``path`` with DQModel.read in a process limited to 2 GB of address space."""
    code = ("import sys\nfrom dqref import DQModel\ntry:\n    DQModel.read(sys.argv[1])\n"
            "except Exception as error:\n    print(type(error).__name__, error)\n")
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS,
                                                                (2 << 30, 2 << 30)))


def test_a_tile_compressed_dq_declaring_60000_squared_is_refused_before_decompression(tmp_path):
    model = small_model()
    path = plain_reference(tmp_path / "ref.fits", model,
                           replace={"DQ": fits.CompImageHDU(model.dq, name="DQ")})
    patch_cards(path, {(1, "ZNAXIS1"): b"ZNAXIS1 =                60000",
                       (1, "ZNAXIS2"): b"ZNAXIS2 =                60000"})
    done = read_in_small_address_space(path)
    assert done.stdout.strip() == (f"ReferenceFileError {path}: HDU 1 (DQ) is tile-compressed "
                                   "(60000 x 60000 declared); a reference's DQ must be an "
                                   "uncompressed image (funpack it)"), done.stderr


def headers_only(path: Path, rows: int, columns: int, length: int) -> Path:
    """A primary header and a DQ header declaring ``rows`` x ``columns`` uint32 pixels,
    the file extended (sparse: no disk used) to ``length`` bytes."""
    header = fits.Header([("XTENSION", "IMAGE"), ("BITPIX", 32), ("NAXIS", 2),
                          ("NAXIS1", columns), ("NAXIS2", rows), ("PCOUNT", 0),
                          ("GCOUNT", 1), ("BZERO", 2**31), ("EXTNAME", "DQ")])
    primary = fits.Header([("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 0), ("EXTEND", True),
                           ("INSTRUME", "IRIS"), ("DETECTOR", "IMG1")])
    path.write_bytes(primary.tostring().encode() + header.tostring().encode())
    os.truncate(path, length)
    return path


def test_a_9_kb_file_declaring_100000_squared_is_refused_before_reading(tmp_path):
    path = headers_only(tmp_path / "huge.fits", 100000, 100000, 3 * 2880)
    done = read_in_small_address_space(path)
    assert done.stdout.strip() == (f"ReferenceFileError {path}: HDU 1 (DQ) declares "
                                   "40000000000 bytes of data at offset 5760, past the end of "
                                   "the 8640-byte file (truncated?)"), done.stderr


def test_a_dq_larger_than_the_largest_full_frame_is_refused_before_reading(tmp_path):
    path = headers_only(tmp_path / "huge.fits", 8192, 8192, 2 * 2880 + 4 * 8192**2)
    done = read_in_small_address_space(path)
    assert done.stdout.strip() == (f"ReferenceFileError {path}: HDU 1 (DQ) declares 8192 x "
                                   "8192 pixels, more than the largest IRIS full frame (4096 x "
                                   "4096 in dqref/detectors.toml)"), done.stderr


def test_a_dq_declaring_more_rows_than_the_file_holds_is_refused_as_truncated(tmp_path):
    path = patch_cards(plain_reference(tmp_path / "ref.fits"),
                       {(1, "NAXIS2"): b"NAXIS2  =                 4096"})
    size = path.stat().st_size
    assert (f"HDU 1 (DQ) declares 1048576 bytes of data at offset 5760, past the end of the "
            f"{size}-byte file (truncated?)") in read_error(path)


def test_a_truncated_reference_is_refused_as_truncated(tmp_path):
    path = plain_reference(tmp_path / "ref.fits")
    path.write_bytes(path.read_bytes()[:2880 * 3])
    assert "past the end of the 8640-byte file (truncated?)" in read_error(path)


# -- issue 12: a full or read-only disk is one line naming the path ----------------------------
@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_dqref_create_into_a_read_only_directory_is_one_line(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    result = runner.invoke(dqref_app, ["create", str(folder / "ref.fits"), "-i", "IRIS",
                                       "-d", "IMG1"])
    assert_one_line_error(result, f"dqref: error: {folder / 'ref.fits'}: Permission denied")
    assert list(folder.iterdir()) == []


def test_dqref_create_when_the_disk_refuses_the_write_names_the_target(tmp_path):
    # RLIMIT_FSIZE makes the kernel cut the write short, as a full disk does; numpy's
    # tofile (astropy's writer) then reports the short write without an errno
    target = tmp_path / "ref.fits"
    done = run_script("dqref", "create", target, "-i", "IRIS", "-d", "IMG1",
                      limits=[(resource.RLIMIT_FSIZE, 1 << 20)])
    assert_one_line_process_error(done, f"dqref: error: {target}: cannot be written (",
                                  "; the disk is full or the file is too large)")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["histogram", "show"])
def test_a_picture_written_to_a_full_disk_is_one_line_naming_it(tmp_path, command):
    path = plain_reference(tmp_path / "ref.fits")
    option = "--plot" if command == "histogram" else "--png"
    done = run_script("dqref", command, path, option, "/dev/full")
    assert_one_line_process_error(done, "dqref: error: /dev/full: No space left on device")


def test_user_errors_turn_a_real_enospc_into_one_line_naming_the_file():
    app = typer.Typer()

    @app.command()
    @user_errors("prog")
    def write() -> None:
        with writing("/dev/full"), open("/dev/full", "w") as stream:
            stream.write("x" * 10000)

    result = runner.invoke(app, [])
    assert_one_line_error(result)
    assert result.stderr == "prog: error: /dev/full: No space left on device\n"


@pytest.mark.parametrize(("error", "line"), [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/data/out.fits"),
     "/data/out.fits: No space left on device"),
    (OSError(errno.EROFS, os.strerror(errno.EROFS), "/mnt/ro/out.fits"),
     "/mnt/ro/out.fits: Read-only file system"),
    (OSError(errno.EACCES, os.strerror(errno.EACCES), "/root/x.fits"),
     "/root/x.fits: Permission denied"),
    (OSError(errno.ELOOP, os.strerror(errno.ELOOP), "/tmp/loop.fits"),
     "/tmp/loop.fits: Too many levels of symbolic links"),
    (OSError(errno.EXDEV, os.strerror(errno.EXDEV), "/a/x", None, "/b/x"),
     "/a/x -> /b/x: Invalid cross-device link"),
    (UnicodeDecodeError("utf-8", b"x\xe9y", 1, 2, "invalid continuation byte"),
     "cannot decode text: 'utf-8' codec can't decode byte 0xe9 in position 1: invalid "
     "continuation byte"),
])
def test_user_errors_turn_os_and_unicode_errors_into_one_line(error, line):
    app = typer.Typer()

    @app.command()
    @user_errors("prog")
    def fail() -> None:
        raise error

    result = runner.invoke(app, [])
    assert_one_line_error(result)
    assert result.stderr == f"prog: error: {line}\n"


def test_user_errors_turn_an_astropy_parse_error_into_one_line():
    app = typer.Typer()

    @app.command()
    @user_errors("prog")
    def parse() -> None:
        fits.Card.fromstring("DESCRIP = 'never closed").value  # noqa: B018

    result = runner.invoke(app, [])
    assert_one_line_error(result, "prog: error: VerifyError: Unparsable card (DESCRIP)")


def test_user_errors_keep_the_traceback_of_a_bug():
    app = typer.Typer()

    @app.command()
    @user_errors("prog")
    def broken() -> None:
        raise KeyError("a bug")

    result = runner.invoke(app, [])
    assert isinstance(result.exception, KeyError)


# -- issue 15: FIFOs and devices never block a reader ------------------------------------------
@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "mask.fits"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
@pytest.mark.parametrize("command", ["validate", "histogram", "show"])
def test_dqref_refuses_a_fifo_or_a_device_without_blocking(tmp_path, fifo, special, command):
    path = fifo if special == "fifo" else Path(special)
    png = ["--png", tmp_path / "mask.png"] if command == "show" else []
    done = run_script("dqref", command, path, *png)
    assert_one_line_process_error(done, str(path), "not a regular file")


@pytest.mark.parametrize("option", ["--user-dq", "--override-dq"])
@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
def test_dqinit_refuses_a_fifo_or_a_device_as_a_mask_without_blocking(tmp_path, ramp, fifo,
                                                                       special, option):
    path = fifo if special == "fifo" else Path(special)
    reference = plain_reference(tmp_path / "ref.fits")
    masks = {"--override-dq": path} if option == "--override-dq" else \
        {"--override-dq": reference, "--user-dq": path}
    done = run_script("dqinit", "run", ramp, "-o", tmp_path / "out.fits", "-j", "1",
                      *[part for pair in masks.items() for part in pair])
    assert_one_line_process_error(done, "FAILED", f"{path}: not a regular file", code=1)
    assert not (tmp_path / "out.fits").exists()


# -- issue 17: non-ASCII file names ------------------------------------------------------------
def test_a_reference_with_a_non_ascii_name_is_read(tmp_path):
    path = plain_reference(tmp_path / "réf_日本.fits")
    assert DQModel.read(path).dq[3, 4] == flags.value("DEAD|DO_NOT_USE")


def test_dqref_validate_a_reference_with_a_non_ascii_name(tmp_path):
    path = tmp_path / "réf_日本.fits"
    small_model().write(path)
    result = runner.invoke(dqref_app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path}: valid\n"


def test_dqinit_override_dq_with_a_non_ascii_name(tmp_path, ramp):
    path = plain_reference(tmp_path / "réf_ü.fits")
    result = runner.invoke(dqinit_app, ["run", str(ramp), "--override-dq", str(path),
                                        "-o", str(tmp_path / "out.fits"), "-j", "1"])
    assert result.exit_code == 0, result.output
    with fits.open(tmp_path / "out.fits") as hdulist:
        assert hdulist["PIXELDQ"].data[3, 4] == flags.value("DEAD|DO_NOT_USE")
        assert hdulist[0].header["S_DQINIT"] == "COMPLETE"


# -- the reader's cost -------------------------------------------------------------------------
def test_reading_a_full_frame_reference_holds_one_copy_of_its_array(tmp_path):
    DQModel.blank("IRIS", "IMG1").write(tmp_path / "full.fits")
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts at its parent's (pytest's) peak
    code = ("import sys\nfrom dqref import DQModel\nimport dqref.reffile\n"
            "def peak():\n    status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
            "    return int(status.split()[0])\n"
            "before = peak()\nmodel = DQModel.read(sys.argv[1])\nprint(peak() - before)\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "full.fits")],
                          capture_output=True, text=True, timeout=60, check=True)
    grown_mib = int(done.stdout) / 1024
    assert grown_mib < 64 * 1.25, f"peak RSS grew by {grown_mib:.0f} MiB for a 64 MiB array"
