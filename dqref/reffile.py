"""The FITS layout of a DQ reference, compatible with JWST MASK references.

Primary header: TELESCOP, INSTRUME, DETECTOR, REFTYPE, USEAFTER, PEDIGREE, DESCRIP, AUTHOR,
SUBARRAY, SUBSTRT1, SUBSTRT2, SUBSIZE1, SUBSIZE2 and HISTORY; a ``DQ`` image extension
(uint32, 2D) and a ``DQ_DEF`` binary table (BIT, VALUE, NAME, DESCRIPTION). Every HDU
carries CHECKSUM/DATASUM, verified on read. Keyword names appear here and nowhere else.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits

from dqref import flags, values
from dqref.atomic import atomic_output
from dqref.errors import InvalidReferenceError, ReferenceFileError
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
    """
    path = Path(path)
    problems = error_findings(model.validate())
    if problems:
        raise InvalidReferenceError(problems, source=str(path))
    hdulist = to_hdulist(model)
    with atomic_output(path, overwrite=overwrite) as temporary:
        hdulist.writeto(temporary, checksum=True)
    return path


def read_reference(path: str | os.PathLike) -> DQModel:
    """Read a DQ reference (ours, or a JWST MASK reference) into a `DQModel`.

    Checksums are verified when the file carries them. The ``DQ_DEF`` table is kept as
    the file defines it (see `dqref.flags.translation_table` for non-standard bits).

    Raises
    ------
    ReferenceFileError
        The file is missing, is not FITS, lacks a ``DQ`` extension, or fails its checksum.
    """
    path = Path(path)
    if not path.is_file():
        raise ReferenceFileError(f"{path}: no such file")
    try:
        with fits.open(path, memmap=False) as hdulist:
            _verify_checksums(hdulist, path)
            return from_hdulist(hdulist, path)
    except (OSError, ValueError) as error:
        raise ReferenceFileError(f"{path}: cannot be read as FITS ({error})") from None


def from_hdulist(hdulist: fits.HDUList, source: str | os.PathLike = "<memory>") -> DQModel:
    """Build a `DQModel` from an open HDUList (``DQ`` image, optional ``DQ_DEF``)."""
    if DQ_EXTENSION not in hdulist:
        raise ReferenceFileError(f"{source}: has no {DQ_EXTENSION} extension")
    header = hdulist[0].header
    data = hdulist[DQ_EXTENSION].data
    if data is None or data.ndim != 2:
        raise ReferenceFileError(f"{source}: the {DQ_EXTENSION} extension is not a 2D image")
    model = DQModel()
    try:  # the HDU's array is ours (read without memmap): adopt it rather than copy 64 MB
        model._dq = as_dq_array(data, copy=False)
    except ValueError as error:
        raise ReferenceFileError(f"{source}: {error}") from None
    for keyword, (attribute, _) in _KEYWORDS.items():
        if keyword in header:
            setattr(model.meta, attribute, str(header[keyword]).strip())
        elif attribute in ("useafter", "pedigree"):
            setattr(model.meta, attribute, None)
    model.meta.subarray = subarray_of(header, data.shape)
    model.meta.history = history_lines([str(card) for card in header.get("HISTORY", [])])
    if DQ_DEF_EXTENSION in hdulist:
        table = hdulist[DQ_DEF_EXTENSION].data
        model.dq_def = np.array(
            [(int(r["BIT"]), int(r["VALUE"]), flags.decode_name(r["NAME"]),
              flags.decode_name(r["DESCRIPTION"]) if "DESCRIPTION" in table.names else "")
             for r in table], dtype=flags.DQ_DEF_DTYPE)
    return model


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


def subarray_of(header: fits.Header, shape: tuple[int, int]) -> Subarray:
    """Return the subarray declared by a primary header, defaulting to FULL at (1, 1)."""
    return Subarray(
        name=str(header.get("SUBARRAY", "FULL")).strip(),
        xstart=int(header.get("SUBSTRT1", 1)),
        ystart=int(header.get("SUBSTRT2", 1)),
        xsize=int(header.get("SUBSIZE1", shape[1])),
        ysize=int(header.get("SUBSIZE2", shape[0])),
    )


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


def _telescope(instrument: str | None) -> str:
    from dqref.detectors import TELESCOPES

    return TELESCOPES.get(str(instrument or "").upper(), "UNKNOWN")
