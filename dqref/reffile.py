"""The FITS layout of a DQ reference, compatible with JWST MASK references.

Primary header: TELESCOP, INSTRUME, DETECTOR, REFTYPE, USEAFTER, PEDIGREE, DESCRIP, AUTHOR,
SUBARRAY, SUBSTRT1, SUBSTRT2, SUBSIZE1, SUBSIZE2 and HISTORY; a ``DQ`` image extension
(uint32, 2D) and a ``DQ_DEF`` binary table (BIT, VALUE, NAME, DESCRIPTION). Every HDU
carries CHECKSUM/DATASUM, verified on read. Keyword names appear here and nowhere else.

Reading trusts nothing in the file (`dqref.fitsfile` checks every header first): a file
that is not what it claims is refused with one `ReferenceFileError` line naming the file
and what is wrong, before any data is read, and nothing is reinterpreted: the DQ must be
an uncompressed integer image no larger than the instrument's largest full frame, the
subarray keywords whole numbers, and the DQ_DEF a binary table a reader can trust.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from dqref import fitsfile, flags, values
from dqref.atomic import atomic_output
from dqref.detectors import TABLE_FILE, all_detectors, canonical_instrument
from dqref.errors import DQDefError, InvalidReferenceError, ReferenceFileError, writing
from dqref.model import DQModel, Subarray, as_dq_array
from dqref.validation import errors as error_findings

DQ_EXTENSION = "DQ"
DQ_DEF_EXTENSION = "DQ_DEF"
#: Header keyword -> (ReferenceMeta attribute, comment).
_KEYWORDS = {
    "TELESCOP": ("telescope", "telescope"),
    "INSTRUME": ("name", "instrument"),
    "DETECTOR": ("detector", "detector"),
    "REFTYPE": ("reftype", "reference file type"),
    "USEAFTER": ("useafter", "use after this observation date-time"),
    "PEDIGREE": ("pedigree", "origin of the data"),
    "DESCRIP": ("description", "description of the reference"),
    "AUTHOR": ("author", "author of the reference"),
}
_SUBARRAY_KEYWORDS = {
    "SUBARRAY": ("name", "subarray name"),
    "SUBSTRT1": ("xstart", "first column of the subarray (1-indexed)"),
    "SUBSTRT2": ("ystart", "first row of the subarray (1-indexed)"),
    "SUBSIZE1": ("xsize", "number of columns"),
    "SUBSIZE2": ("ysize", "number of rows"),
}
#: A DQ_DEF of 32 flags is 4 kB; a table declaring more than this is not one.
MAX_DQ_DEF_BYTES = 1 << 20
_INTEGERS_ONLY = "DQ flags must be stored as integers"


def to_hdulist(model: DQModel) -> fits.HDUList:
    """Return the FITS HDUList of ``model`` (metadata defaults filled in)."""
    meta = model.filled_meta()
    primary = fits.PrimaryHDU()
    header = primary.header
    telescope = meta.telescope or _telescope(meta.name)
    for keyword, (attribute, comment) in _KEYWORDS.items():
        value = telescope if attribute == "telescope" else getattr(meta, attribute)
        if attribute == "useafter":
            value = values.normalize_datetime(value)
        # A long value keeps the card whole by dropping the comment (no truncation warning).
        header[keyword] = (value, comment) if len(str(value)) <= 40 else value
    for keyword, (attribute, comment) in _SUBARRAY_KEYWORDS.items():
        header[keyword] = (getattr(meta.subarray, attribute), comment)
    for line in meta.history:
        for card in history_cards(line):
            header.add_history(card)
    dq = fits.ImageHDU(model.dq, name=DQ_EXTENSION)
    dq_def = fits.BinTableHDU(np.asarray(model.dq_def, dtype=flags.DQ_DEF_DTYPE),
                              name=DQ_DEF_EXTENSION)
    return fits.HDUList([primary, dq, dq_def])


def write_reference(model: DQModel, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Validate ``model`` and write it to ``path`` via a temporary file and a rename.

    Raises
    ------
    InvalidReferenceError
        Validation found errors; nothing is written.
    FileExistsRefusedError
        ``path`` exists and ``overwrite`` is False.
    OSError
        The disk refused (full, read-only, no permission); the error names ``path``, not
        the temporary file, and nothing is left behind.
    """
    path = Path(path)
    problems = error_findings(model.validate())
    if problems:
        raise InvalidReferenceError(problems, source=str(path))
    hdulist = to_hdulist(model)
    with writing(path), atomic_output(path, overwrite=overwrite) as temporary:
        hdulist.writeto(temporary, checksum=True)
    return path


def read_reference(path: str | os.PathLike) -> DQModel:
    """Read a DQ reference (ours, or a JWST MASK reference) into a `DQModel`.

    Every header is checked before any data is read (see the module docstring);
    checksums are verified when the file carries them; the DQ array is read as its raw
    integers, exactly. The ``DQ_DEF`` table is kept as the file defines it (see
    `dqref.flags.translation_table` for non-standard bits) once it can be trusted.

    Raises
    ------
    ReferenceFileError
        The file is missing or not a regular file, is not FITS, has a malformed header,
        lacks a ``DQ`` image, declares more data than it holds or than the instrument's
        largest frame, stores DQ compressed, scaled or as floats, has a non-integer
        subarray keyword or a malformed ``DQ_DEF``, or fails its checksum.
    DQDefError
        (a ReferenceFileError) The ``DQ_DEF`` cannot be trusted (`flags.dq_def_problems`).
    """
    path = Path(path)
    hdus = fitsfile.scan(path)
    primary = hdus[0].header
    dq_hdu = _dq_image(hdus, path)
    dtype = fitsfile.integer_dtype(dq_hdu, path, requirement=_INTEGERS_ONLY)
    dq_def_hdu = _dq_def_table(hdus, path)
    subarray = subarray_of(primary, dq_hdu.shape, path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with fits.open(path, memmap=False, disable_image_compression=True) as hdulist:
                _check_astropy_agrees(hdulist, hdus, path)
                _verify_checksums(hdulist, path)
                table = hdulist[dq_def_hdu.index].data if dq_def_hdu else None
    except ReferenceFileError:
        raise
    except Exception as error:  # noqa: BLE001 - only astropy parsing the file runs here
        # Its headers passed fitsfile.scan; what astropy still cannot parse (a TTYPE too
        # long for a card raises AssertionError, a bad TFORM ValueError) is a bad file.
        raise ReferenceFileError(f"{path}: cannot be read as FITS ({type(error).__name__}: "
                                 f"{_first_line(error)})") from None
    dq_def = dq_def_rows(table, path) if dq_def_hdu else None
    dq = fitsfile.read_integer_image(path, dq_hdu, dtype)
    return _model(primary, dq, dq_def, subarray, path)


def from_hdulist(hdulist: fits.HDUList, source: str | os.PathLike = "<memory>") -> DQModel:
    """Build a `DQModel` from an open HDUList (``DQ`` image, optional ``DQ_DEF``).

    The same rules as `read_reference` apply to its HDUs; files should be read with
    `read_reference`, which checks sizes before reading.
    """
    if DQ_EXTENSION not in hdulist:
        raise ReferenceFileError(f"{source}: has no {DQ_EXTENSION} extension")
    hdu = hdulist[DQ_EXTENSION]
    index = hdulist.index_of(DQ_EXTENSION)
    if isinstance(hdu, fits.CompImageHDU) or not hdu.is_image:
        kind = "tile-compressed" if isinstance(hdu, fits.CompImageHDU) else "a table"
        raise ReferenceFileError(f"{source}: HDU {index} ({DQ_EXTENSION}) is {kind}; "
                                 f"{DQ_EXTENSION} must be a 2D image")
    described = fitsfile.HDUHeader(index, DQ_EXTENSION, fitsfile.IMAGE, hdu.header, 0, 0, 0,
                                   tuple(hdu.shape))
    fitsfile.integer_dtype(described, source, requirement=_INTEGERS_ONLY)
    data = hdu.data
    if data is None or data.ndim != 2 or data.size == 0:
        raise ReferenceFileError(f"{source}: the {DQ_EXTENSION} extension is not a 2D image")
    dq_def = None
    if DQ_DEF_EXTENSION in hdulist:
        table = hdulist[DQ_DEF_EXTENSION]
        if not isinstance(table, fits.BinTableHDU | fits.TableHDU):
            raise ReferenceFileError(f"{source}: {DQ_DEF_EXTENSION} must be a binary table")
        dq_def = dq_def_rows(table.data, source)
    header = hdulist[0].header
    return _model(header, data, dq_def, subarray_of(header, data.shape, source), source)


def dq_def_rows(table, source: str | os.PathLike) -> np.ndarray:
    """Return a file's ``DQ_DEF`` table as a trusted structured array (`flags.DQ_DEF_DTYPE`).

    Raises
    ------
    ReferenceFileError
        A BIT, VALUE or NAME column is missing or not of integers / text, a VALUE does
        not fit in 32 bits, or a NAME or DESCRIPTION is not printable ASCII.
    DQDefError
        The rows cannot be trusted (`flags.dq_def_problems`).
    """
    where = f"{source}: {DQ_DEF_EXTENSION}"
    columns = {name.upper(): name for name in (table.columns.names if table is not None
                                                else [])}
    fields = {}
    for column, kinds in (("BIT", "iu"), ("VALUE", "iu"), ("NAME", "SU"),
                          ("DESCRIPTION", "SU")):
        if column not in columns:
            if column == "DESCRIPTION":
                continue
            raise ReferenceFileError(f"{where} has no {column} column")
        try:  # astropy converts a column when it is first read (TZEROn = 'IMAGE' fails)
            field = np.asarray(table.field(columns[column]))
        except Exception as error:  # noqa: BLE001 - astropy parsing the file's table
            raise ReferenceFileError(f"{where} column {column} cannot be read "
                                     f"({type(error).__name__}: {_first_line(error)})"
                                     ) from None
        if field.ndim != 1 or field.dtype.kind not in kinds:
            wanted = "integers" if kinds == "iu" else "text"
            raise ReferenceFileError(f"{where} column {column} holds {field.dtype} of shape "
                                     f"{field.shape[1:] or 'scalar'} per row, not {wanted}")
        fields[column] = field
    rows = []
    for number in range(len(fields["BIT"])):
        name = _ascii(fields["NAME"][number], f"{where} row {number + 1}: NAME", 40)
        label = f"{where} row {number + 1} ({name})"
        description = _ascii(fields["DESCRIPTION"][number], f"{label}: DESCRIPTION") \
            if "DESCRIPTION" in fields else ""
        bit, value = int(fields["BIT"][number]), int(fields["VALUE"][number])
        if not 0 <= value < 2**32:
            raise ReferenceFileError(f"{label}: VALUE {value} does not fit in 32 bits "
                                     "(0 .. 2**32 - 1)")
        if not -2**31 <= bit < 2**31:  # else BIT fits the table; check_dq_def says the rest
            raise DQDefError(f"{where} cannot be trusted: {DQ_DEF_EXTENSION} row {number + 1} "
                             f"({name.upper()}): BIT {bit} is outside 0..31")
        rows.append((bit, value, name, description[:80]))
    dq_def = np.array(rows, dtype=flags.DQ_DEF_DTYPE)
    try:
        flags.check_dq_def(dq_def)
    except DQDefError as error:
        raise DQDefError(f"{source}: {error}") from None
    return dq_def


_HISTORY_WIDTH = 72
_CONTINUED = "&"  # as in the FITS long-string convention: this card continues on the next


def history_cards(line: str) -> list[str]:
    """Split one HISTORY entry into cards of at most 72 characters, '&' marking continuation."""
    cards = []
    while len(line) > _HISTORY_WIDTH:
        cards.append(line[:_HISTORY_WIDTH - 1] + _CONTINUED)
        line = line[_HISTORY_WIDTH - 1:]
    return cards + [line]


def history_lines(cards: list[str]) -> list[str]:
    """Join HISTORY cards written by `history_cards` back into entries."""
    lines, pending = [], ""
    for card in cards:
        if len(card) == _HISTORY_WIDTH and card.endswith(_CONTINUED):
            pending += card[:-1]
        else:
            lines.append(pending + card)
            pending = ""
    return lines + ([pending] if pending else [])


def subarray_of(header: fits.Header, shape: tuple[int, int],
                source: str | os.PathLike = "<header>") -> Subarray:
    """Return the subarray declared by a primary header, defaulting to FULL at (1, 1).

    Raises
    ------
    ReferenceFileError
        SUBSTRT1/2 or SUBSIZE1/2 is not a whole number (1.5, '1', T); 101.0 reads as 101.
    """
    defaults = {"SUBSTRT1": 1, "SUBSTRT2": 1, "SUBSIZE1": shape[1], "SUBSIZE2": shape[0]}
    whole = {keyword: _whole_number(header, keyword, default, source)
             for keyword, default in defaults.items()}
    return Subarray(name=str(header.get("SUBARRAY", "FULL")).strip(),
                    xstart=whole["SUBSTRT1"], ystart=whole["SUBSTRT2"],
                    xsize=whole["SUBSIZE1"], ysize=whole["SUBSIZE2"])


def largest_frame(instrument: str | None) -> tuple[tuple[int, int], str]:
    """Return the largest (rows, columns) of an instrument's detectors, and whose they are.

    An instrument the detector table does not list gets the largest of all its frames.
    """
    key = canonical_instrument(instrument)
    detectors = [d for d in all_detectors().values() if d.instrument == key]
    owner = key if detectors else "known"
    detectors = detectors or list(all_detectors().values())
    return (max(d.shape[0] for d in detectors), max(d.shape[1] for d in detectors)), owner


# -- reading, piece by piece ------------------------------------------------------------------
def _dq_image(hdus: list[fitsfile.HDUHeader], path: Path) -> fitsfile.HDUHeader:
    """Return the DQ extension once it is known to be a 2D image no larger than a frame."""
    hdu = fitsfile.only(hdus, DQ_EXTENSION, path)
    if hdu is None:
        raise ReferenceFileError(f"{path}: has no {DQ_EXTENSION} extension")
    header = hdu.header
    if hdu.kind == fitsfile.COMPRESSED:
        declared = [header.get(f"ZNAXIS{axis}") for axis in (2, 1)]
        size = f" ({declared[0]} x {declared[1]} declared)" \
            if all(fitsfile.whole(n) for n in declared) else ""
        raise ReferenceFileError(f"{path}: {hdu.describe()} is tile-compressed{size}; a "
                                 f"reference's {DQ_EXTENSION} must be an uncompressed image "
                                 "(funpack it)")
    if hdu.kind != fitsfile.IMAGE:
        raise ReferenceFileError(f"{path}: {hdu.describe()} is a {hdu.kind}; {DQ_EXTENSION} "
                                 "must be a 2D image")
    if len(hdu.shape) != 2 or 0 in hdu.shape:
        raise ReferenceFileError(f"{path}: the {DQ_EXTENSION} extension is not a 2D image "
                                 f"(shape {hdu.shape})")
    (rows, columns), owner = largest_frame(hdus[0].header.get("INSTRUME"))
    if hdu.shape[0] > rows or hdu.shape[1] > columns:
        raise ReferenceFileError(f"{path}: {hdu.describe()} declares {hdu.shape[0]} x "
                                 f"{hdu.shape[1]} pixels, more than the largest {owner} full "
                                 f"frame ({rows} x {columns} in {TABLE_FILE})")
    return hdu


def _dq_def_table(hdus: list[fitsfile.HDUHeader], path: Path) -> fitsfile.HDUHeader | None:
    """Return the DQ_DEF extension (None if absent) once it is known to be a small table."""
    hdu = fitsfile.only(hdus, DQ_DEF_EXTENSION, path)
    if hdu is None:
        return None
    if hdu.kind != fitsfile.TABLE:
        raise ReferenceFileError(f"{path}: {hdu.describe()} is an {hdu.kind}; "
                                 f"{DQ_DEF_EXTENSION} must be a binary table (BIT, VALUE, "
                                 "NAME, DESCRIPTION)")
    if hdu.data_bytes > MAX_DQ_DEF_BYTES:
        raise ReferenceFileError(f"{path}: {hdu.describe()} declares {hdu.data_bytes} bytes; "
                                 f"a {DQ_DEF_EXTENSION} table of 32 flags holds 4 kB")
    return hdu


def _check_astropy_agrees(hdulist: fits.HDUList, hdus: list[fitsfile.HDUHeader],
                          path: Path) -> None:
    """astropy must see the HDUs where `fitsfile.scan` saw them (else refuse: which is right
    is not guessed)."""
    for hdu in hdus:
        info = hdulist.fileinfo(hdu.index) if hdu.index < len(hdulist) else None
        if info is None or (info["hdrLoc"], info["datLoc"]) != (hdu.header_offset,
                                                              hdu.data_offset):
            raise ReferenceFileError(f"{path}: astropy reads {hdu.describe()} elsewhere in "
                                     "the file than its headers declare")


def _model(header: fits.Header, dq: np.ndarray, dq_def: np.ndarray | None,
           subarray: Subarray, source) -> DQModel:
    model = DQModel()
    try:  # a uint32 array read here is ours: adopt it rather than copy 64 MB
        model._dq = as_dq_array(dq, copy=False)
    except ValueError as error:
        raise ReferenceFileError(f"{source}: {error}") from None
    for keyword, (attribute, _) in _KEYWORDS.items():
        if keyword in header:
            setattr(model.meta, attribute, str(header[keyword]).strip())
        elif attribute in ("useafter", "pedigree"):
            setattr(model.meta, attribute, None)
    model.meta.subarray = subarray
    model.meta.history = history_lines([str(card) for card in header.get("HISTORY", [])])
    if dq_def is not None:
        model.dq_def = dq_def
    return model


def _whole_number(header: fits.Header, keyword: str, default: int, source) -> int:
    value = header.get(keyword, default)
    whole = isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value) and value == int(value)
    if not whole:
        raise ReferenceFileError(f"{source}: {keyword} = {value!r} is not a whole number")
    return int(value)


def _ascii(raw, what: str, longest: int | None = None) -> str:
    """Return a table text field stripped; refuse bytes that are not printable ASCII."""
    data = raw if isinstance(raw, bytes) else str(raw).encode("utf-8")
    data = data.rstrip(b"\0 ").lstrip(b" ")
    bad = next((byte for byte in data if not 0x20 <= byte <= 0x7E), None)
    if bad is not None:
        raise ReferenceFileError(f"{what} holds a byte that is not printable ASCII "
                                 f"(0x{bad:02x})")
    if longest is not None and len(data) > longest:
        raise ReferenceFileError(f"{what} is longer than {longest} characters")
    return data.decode("ascii")


def _verify_checksums(hdulist: fits.HDUList, path: Path) -> None:
    for index, hdu in enumerate(hdulist):
        if "CHECKSUM" not in hdu.header and "DATASUM" not in hdu.header:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            status = hdu.verify_checksum()
            if status == 2:  # DATASUM alone
                status = hdu.verify_datasum()
        if status == 0:
            name = hdu.name or f"HDU {index}"
            raise ReferenceFileError(f"{path}: checksum verification failed in {name} "
                                     "(the file was modified or corrupted)")


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _telescope(instrument: str | None) -> str:
    from dqref.detectors import TELESCOPES

    return TELESCOPES.get(str(instrument or "").upper(), "UNKNOWN")
