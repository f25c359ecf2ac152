"""A bounded fuzz of every reader: mutated references, ramps (both layouts) and mappings.

Valid small files are mutated (bytes flipped or overwritten, the file truncated, header
cards rewritten: values, BITPIX, NAXISn, XTENSION, EXTNAME, ...; tables and images
swapped by the prebuilt variants and by XTENSION edits) and handed to the readers users
run: `DQModel.read`, dqinit's `open_ramp` and the step on the file with ``override_dq``,
and `LocalCache.bestref` / ``rules`` / ``verify`` on a cache with one mapping mutated.

Each reader must succeed or raise a `DQRefError` whose message is one line. Anything else
fails the test with the example that caused it: another exception, a hang (each example
runs under a hard 10 s alarm: hypothesis's own deadline is off, because on a shared
2-core machine a slow example is not a hang) or an oversized allocation (each example
runs with the address space capped at 1 GiB above what the process already uses, so an
allocation a header declares ends in MemoryError, a failure, instead of swapping).

Budget: ``FUZZ_SECONDS`` (unset: about 40 s for the whole file, derandomized so every CI
run tries the same examples); ``FUZZ_SECONDS=600 pytest tests/test_fuzz.py`` runs longer
with fresh random examples. ``-s`` prints how many cases each target ran and how they
ended.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import string
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from dqinit import DQInitStep
from dqinit.layouts import open_ramp
from dqinit.simulate import level0_header, ramp_header, write_level0_ramp, write_raw_ramp
from dqref import DQModel, flags
from dqref.cache import crds_adapter
from dqref.cache.local_cache import LocalCache
from dqref.errors import DQRefError
from dqref.model import Subarray
from dqref.reffile import to_hdulist

FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS") or 0)
BY_HAND = FUZZ_SECONDS > 0
BUDGET = FUZZ_SECONDS or 40.0
#: Seconds per example of each target, measured in a pytest process on the 2-core CI
#: machine (most mutated files are refused early; ``LocalCache.verify`` takes ~1 s, nearly
#: all of it crds certify's ``gc.collect()`` per mapping), and each target's share of the
#: budget. They only turn seconds into a number of examples.
COST = {"reference": 0.012, "jwst ramp": 0.011, "level-0 ramp": 0.013, "mapping": 1.0}
SHARE = {"reference": 0.25, "jwst ramp": 0.15, "level-0 ramp": 0.15, "mapping": 0.45}
HANG_SECONDS = 10
MEMORY_HEADROOM = 1 << 30
ORIGIN = (101, 201)
SELECTING_HEADER = {"INSTRUME": "IRIS", "DETECTOR": "IMG1", "SUBARRAY": "SUB64",
                    "DATE-OBS": "2026-01-15", "TIME-OBS": "03:00:00"}
#: target -> how its cases ended ("ok" or the DQRefError class), printed with -s.
OUTCOMES: dict[str, Counter] = {}


def fuzz_settings(target: str):
    examples = max(10, int(BUDGET * SHARE[target] / COST[target]))
    return settings(max_examples=examples, deadline=None, derandomize=not BY_HAND,
                    database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture,
                                           HealthCheck.filter_too_much])


# -- the files to mutate ------------------------------------------------------------------
class Base:
    """A valid file's bytes and where each header card is: {(hdu index, keyword): offset}.

    Its repr is its name, so a failing example prints as ``Base('plain.fits')`` and edits.
    """

    def __init__(self, name: str, data: bytes, cards: dict[tuple[int, str], int],
                 spans: list[tuple[int, int, int]] = ()):
        self.name, self.data, self.cards = name, data, cards
        self.spans = list(spans)  # per HDU: (header offset, data offset, end of data)

    def __repr__(self) -> str:
        return f"Base({self.name!r})"


def base_of(path: Path) -> Base:
    data = path.read_bytes()
    cards, spans = {}, []
    with fits.open(path, disable_image_compression=True) as hdulist:
        for index in range(len(hdulist)):
            info = hdulist.fileinfo(index)
            spans.append((info["hdrLoc"], info["datLoc"], info["datLoc"] + info["datSpan"]))
            for offset in range(info["hdrLoc"], info["datLoc"], 80):
                keyword = data[offset:offset + 8].decode("ascii").strip()
                if keyword and keyword not in ("END", "COMMENT", "HISTORY"):
                    cards.setdefault((index, keyword), offset)
    return Base(path.name, data, cards, spans)


def small_model() -> DQModel:
    model = DQModel(np.zeros((64, 64), np.uint32), name="IRIS", detector="IMG1",
                    useafter="2020-01-01", description="fuzz", author="fuzz")
    model.meta.subarray = Subarray("SUB64", *ORIGIN, 64, 64)
    model.flag([[3, 4], [10, 10]], "DEAD|DO_NOT_USE")
    model.flag([[5, 6]], "HOT|DO_NOT_USE")
    model.dq[7, 7] |= np.uint32(flags.value("REFERENCE_PIXEL"))
    return model


def reference_variants(folder: Path) -> list[Base]:
    """Our reference without and with checksums, and HDU kinds swapped or scaled."""
    model = small_model()
    variants = {}
    variants["plain"] = to_hdulist(model)
    variants["checksummed"] = to_hdulist(model)
    compressed = to_hdulist(model)
    compressed["DQ"] = fits.CompImageHDU(model.dq, name="DQ")
    variants["compressed dq"] = compressed
    image_table = to_hdulist(model)
    image_table["DQ_DEF"] = fits.ImageHDU(np.zeros((4, 32), np.int32), name="DQ_DEF")
    variants["dq_def as image"] = image_table
    signed = to_hdulist(model)
    signed["DQ"] = fits.ImageHDU(model.dq.astype(np.int32) & 0xFFFF, name="DQ")
    variants["int32 dq"] = signed
    jwst = to_hdulist(model)
    jwst["DQ_DEF"] = fits.BinTableHDU(np.array(
        [(0, 1, "DO_NOT_USE", ""), (1, 2, "DEAD", ""), (2, 4, "HOT", ""),
         (31, 2**31, "REFERENCE_PIXEL", "")], dtype=flags.DQ_DEF_DTYPE), name="DQ_DEF")
    variants["jwst numbering"] = jwst
    bases = []
    for name, hdulist in variants.items():
        path = folder / f"{name.replace(' ', '_')}.fits"
        hdulist.writeto(path, checksum=name == "checksummed")
        bases.append(base_of(path))
    return bases


def ramp_variants(folder: Path) -> dict[str, list[Base]]:
    subarray = ("SUB16", *ORIGIN, 16, 16)
    jwst = [write_raw_ramp(folder / "jwst.fits", ramp_header(subarray=subarray), ngroups=2),
            write_raw_ramp(folder / "jwst_dq.fits", ramp_header(subarray=subarray), ngroups=2,
                           with_dq=True)]
    level0 = [write_level0_ramp(folder / "level0.fits", level0_header(subarray=subarray)),
              write_level0_ramp(folder / "level0_dq.fits", level0_header(subarray=subarray),
                                dq={(1, 2, 0, 1): 4})]
    return {"jwst ramp": [base_of(p) for p in jwst],
            "level-0 ramp": [base_of(p) for p in level0]}


class Bench:
    """What the examples mutate and use: base files, a valid reference and ramp, a cache
    with that reference registered and the bytes of its mappings (paths from its root)."""

    def __init__(self, folder: Path, references: list[Base], ramps: dict[str, list[Base]],
                 reference: Path, ramp: Path, cache: Path, mappings: dict[str, bytes]):
        self.folder, self.references, self.ramps = folder, references, ramps
        self.reference, self.ramp, self.cache, self.mappings = reference, ramp, cache, mappings

    def __repr__(self) -> str:
        return f"Bench({self.folder})"

    def file(self, data: bytes, name: str) -> Path:
        path = self.folder / "fuzzed" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        return path


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> Bench:
    folder = tmp_path_factory.mktemp("fuzz")
    reference = folder / "reference.fits"
    small_model().write(reference)
    cache = LocalCache(folder / "cache")
    cache.init()
    cache.add(reference)
    files = [*sorted(cache.mapping_dir.glob("*map")), cache.config_dir / "server_config"]
    mappings = {str(path.relative_to(cache.root)): path.read_bytes() for path in files}
    ramps = ramp_variants(folder)
    ramp = folder / "valid_ramp.fits"
    ramp.write_bytes(ramps["jwst ramp"][0].data)
    return Bench(folder, reference_variants(folder), ramps, reference, ramp, cache.root,
                 mappings)


# -- mutations ----------------------------------------------------------------------------
PRINTABLE = string.ascii_letters + string.digits + " _-.:'()/="
CARD_VALUES = st.one_of(
    st.sampled_from([0, 1, -1, 2, 3, 8, 13, 16, 32, 64, -32, -64, 999, 1000, 4095, 4096,
                     4097, 60000, 100000, 2**31, 2**31 - 1, 2**32, 2**40, 2**63, -2**63]),
    st.integers(),
    st.floats(),
    st.sampled_from(["IMAGE", "BINTABLE", "TABLE", "FOREIGN", "DQ", "DQ_DEF", "SCI",
                     "PIXELDQ", "GROUPDQ", "DATA", "TIMES", "ASDF", "PRIMARY", "J", "K",
                     "E", "D", "L", "40A", "4000A", "1PJ(3)", "1QK(9)", "", "FULL", "IRIS",
                     "LIGER", "IMG1", "MASK", "T", "F"]),
    st.text(alphabet=PRINTABLE, max_size=24),
    st.booleans(),
    st.binary(max_size=24),
)


def card_image(keyword: str, value) -> bytes:
    """An 80-byte card ``KEYWORD = value`` (value written as FITS writes it, or raw bytes)."""
    if isinstance(value, bytes):
        body = value
    elif isinstance(value, bool):
        body = (b"T" if value else b"F").rjust(20)
    elif isinstance(value, int | float):
        body = str(value).upper().encode().rjust(20)
    else:
        body = ("'" + value.replace("'", "''").ljust(8) + "'").encode()
    return (f"{keyword:<8}= ".encode() + body).ljust(80)[:80]


def mutations(bases: list[Base]):
    """A base file and 1-4 mutations of it."""

    def of(base: Base):
        size = len(base.data)
        flip = st.tuples(st.just("flip"), st.integers(0, size - 1), st.integers(1, 255))
        overwrite = st.tuples(st.just("overwrite"), st.integers(0, size - 1),
                              st.binary(min_size=1, max_size=16))
        truncate = st.tuples(st.just("truncate"), st.integers(0, size - 1), st.none())
        card = st.tuples(st.just("card"), st.sampled_from(sorted(base.cards)), CARD_VALUES)
        edits = st.lists(st.one_of(card, card, flip, overwrite, truncate), min_size=1,
                         max_size=4)
        return st.tuples(st.just(base), edits)

    return st.sampled_from(bases).flatmap(of)


def mutate(base: Base, edits) -> bytes:
    data = bytearray(base.data)
    for kind, where, what in edits:
        if kind == "flip":
            if where < len(data):
                data[where] ^= what
        elif kind == "overwrite":
            data[where:where + len(what)] = what
            del data[len(base.data):]
        elif kind == "truncate":
            del data[where:]
        else:
            offset = base.cards[where]
            if offset + 80 <= len(data):
                data[offset:offset + 80] = card_image(where[1], what)
    return bytes(data)


# -- defects found in files this test does not own ------------------------------------------
#: Each was found by this fuzz and is reported to the file's owner. Until it is fixed, the
#: examples that reach it are filtered out (`hypothesis.reject`), by name and reason; every
#: other mutation of the target still runs. Delete an entry when its fix lands.
KNOWN_DEFECTS: dict[str, str] = {}  # all four found in dqinit are fixed


SIZE_KEYWORDS = {"BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT"}


def known_defect(target: str, base: Base, edits) -> str | None:
    """The KNOWN_DEFECTS entry an example would hit, or None."""
    if not target.endswith("ramp"):
        return None
    for kind, where, what in edits:
        if kind == "card":
            keyword = where[1]
            huge = isinstance(what, int | float) and not isinstance(what, bool) and what > 999
            if keyword == "NAXIS" and huge:
                return "ramp NAXIS > 999"
            if (keyword == "SIMPLE" and what is not True) or keyword == "XTENSION":
                return "ramp first card damaged"
            if target == "level-0 ramp" and where[0] == 4 and keyword in SIZE_KEYWORDS:
                return "level-0 tree size"
            continue
        if kind in ("flip", "overwrite") and any(
                start - 16 < where < start + 80 for start, _, _ in base.spans):
            return "ramp first card damaged"
        if target == "level-0 ramp" and len(base.spans) > 4:
            _, tree_start, tree_end = base.spans[4]
            if tree_start <= where < tree_end:
                return "level-0 YAML error"
    return None


# -- running a reader ---------------------------------------------------------------------
class Hang(BaseException):
    """An example ran past HANG_SECONDS (a BaseException: no ``except Exception`` eats it)."""


@contextlib.contextmanager
def bounded():
    """Run one example under a hard alarm and an address-space cap (module docstring)."""

    def alarm(signum, frame):
        raise Hang(f"no answer after {HANG_SECONDS} s")

    with open("/proc/self/status") as status:
        in_use = next(int(line.split()[1]) * 1024 for line in status
                      if line.startswith("VmSize:"))
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = in_use + MEMORY_HEADROOM if hard == resource.RLIM_INFINITY \
        else min(hard, in_use + MEMORY_HEADROOM)
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def answers(target: str, reader: str, call) -> None:
    """Call a reader: it succeeds or raises a one-line DQRefError; anything else fails."""
    outcomes = OUTCOMES.setdefault(target, Counter())
    try:
        with bounded():
            call()
    except Hang as hang:  # reported as a failure, so hypothesis shows the example
        raise AssertionError(f"{reader} hangs: {hang}") from None
    except DQRefError as error:
        message = str(error)
        assert message.strip() and "\n" not in message, \
            f"{reader}: {type(error).__name__} is not one line: {message!r}"
        outcomes[f"{reader}: {type(error).__name__}"] += 1
    else:
        outcomes[f"{reader}: ok"] += 1


def one_line_each(problems: list[str]) -> None:
    """``verify`` reports problems as lines: each must be one."""
    assert all(isinstance(p, str) and p.strip() and "\n" not in p for p in problems), problems


def one_case(target: str) -> None:
    OUTCOMES.setdefault(target, Counter())["cases"] += 1


@pytest.fixture(scope="module", autouse=True)
def report_outcomes():
    yield
    for target, outcomes in OUTCOMES.items():
        ended = ", ".join(f"{key} {n}" for key, n in sorted(outcomes.items()) if key != "cases")
        print(f"\nfuzz {target}: {outcomes['cases']} cases; {ended}")


# -- the targets --------------------------------------------------------------------------
@fuzz_settings("reference")
@given(data=st.data())
def test_a_mutated_reference_is_read_or_refused_in_one_line(bench, data):
    base, edits = data.draw(mutations(bench.references))
    path = bench.file(mutate(base, edits), "reference.fits")
    one_case("reference")
    answers("reference", "DQModel.read", lambda: DQModel.read(path))
    answers("reference", "dqinit --override-dq", lambda: DQInitStep(override_dq=path).run(
        bench.ramp, output=bench.folder / "out.fits", overwrite=True))


def fuzz_ramp(bench: Bench, layout: str, data) -> None:
    base, edits = data.draw(mutations(bench.ramps[layout]))
    if known_defect(layout, base, edits) in KNOWN_DEFECTS:  # a defect still open: skip it
        reject()
    path = bench.file(mutate(base, edits), "ramp.fits")
    one_case(layout)
    answers(layout, "open_ramp", lambda: open_ramp(path))
    answers(layout, "DQInitStep.run", lambda: DQInitStep(override_dq=bench.reference).run(
        path, output=bench.folder / "out.fits", overwrite=True))


@fuzz_settings("jwst ramp")
@given(data=st.data())
def test_a_mutated_jwst_ramp_is_processed_or_refused_in_one_line(bench, data):
    fuzz_ramp(bench, "jwst ramp", data)


@fuzz_settings("level-0 ramp")
@given(data=st.data())
def test_a_mutated_level0_ramp_is_processed_or_refused_in_one_line(bench, data):
    fuzz_ramp(bench, "level-0 ramp", data)


MAPPING_BYTES = st.binary(min_size=1, max_size=12) | st.sampled_from(
    [b"'", b'"', b"}", b"{", b"(", b",", b":", b"\n", b"*", b"N/A", b"iris_dq_9999.fits",
     b"../../x.fits", b"2026-01-01 00:00:00", b"\xff\xfe"])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # crds compiles mutated text
@fuzz_settings("mapping")
@given(data=st.data())
def test_a_cache_with_a_mutated_mapping_answers_or_refuses_in_one_line(bench, data):
    name = data.draw(st.sampled_from(sorted(bench.mappings)))
    original = bench.mappings[name]
    edits = data.draw(st.lists(st.one_of(
        st.tuples(st.just("flip"), st.integers(0, len(original) - 1), st.integers(1, 255)),
        st.tuples(st.just("overwrite"), st.integers(0, len(original) - 1), MAPPING_BYTES),
        st.tuples(st.just("truncate"), st.integers(0, len(original) - 1), st.none())),
        min_size=1, max_size=3))
    text = mutate(Base(name, original, {}), edits)
    if name.endswith("map") and data.draw(st.booleans()):  # as `crds checksum` would
        with contextlib.suppress(Exception):  # what crds cannot parse keeps its bytes
            text = crds_adapter.with_checksum(text.decode("utf-8"), Path(name).name
                                              ).encode("utf-8")
    path = bench.cache / name
    path.write_bytes(text)
    one_case("mapping")
    try:
        cache = LocalCache(bench.cache)
        answers("mapping", "bestref", lambda: cache.bestref(SELECTING_HEADER))
        answers("mapping", "rules", lambda: cache.rules())
        answers("mapping", "verify", lambda: one_line_each(cache.verify()))
    finally:
        path.write_bytes(original)
