"""Derive a DQ reference from FITS flats and darks (the file-level API of `dqref derive`)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from dqref import __version__
from dqref.derive.config import DeriveConfig
from dqref.derive.core import derive_flags
from dqref.errors import DQRefError
from dqref.histogram import FlagHistogram
from dqref.manual_flags import apply_manual_flags, read_manual_flags
from dqref.model import DQModel


class DeriveInputError(DQRefError):
    """An input image is unreadable or disagrees with the others (detector, shape)."""


@dataclass(frozen=True)
class DerivationSummary:
    """What each rule found and the final histogram."""

    rule_counts: dict[str, int]
    histogram: FlagHistogram

    def format(self) -> str:
        lines = ["pixels found per rule:"]
        lines += [f"  {name:<18} {count:>10}" for name, count in self.rule_counts.items()]
        return "\n".join(lines) + "\n" + self.histogram.format_table()


def derive_reference(instrument: str, detector: str, flats: Sequence[str | os.PathLike] = (),
                     darks: Sequence[str | os.PathLike] = (),
                     manual_flags: str | os.PathLike | None = None,
                     config: DeriveConfig | None = None, progress=None,
                     **meta) -> tuple[DQModel, DerivationSummary]:
    """Derive a reference (not written) and a summary from flat and dark slope images.

    Parameters
    ----------
    instrument, detector : str
        From the detector table; every input's INSTRUME/DETECTOR, when present, must agree
        and its shape must be the detector's full frame.
    flats, darks : sequences of paths
        FITS slope images: ``SCI`` extension or primary HDU, 2D or a 3D stack.
    manual_flags : path, optional
        jwst_reffiles-format list, ORed in last.
    config : DeriveConfig, optional
        Thresholds (default: ``defaults.toml``).
    progress : callable, optional
        ``progress(iterable, description)`` wrapper (progress bars).
    **meta : str
        useafter, pedigree, description, author.

    Raises
    ------
    DeriveInputError
        An input cannot be read or disagrees with the detector; the message names it.
    """
    config = config or DeriveConfig.load()
    model = DQModel.blank(instrument, detector, **{k: v for k, v in meta.items() if v})
    shape = model.detector_info.shape
    width = model.detector_info.reference_border if config.reference_border < 0 \
        else config.reference_border
    if not flats and not darks:
        raise DeriveInputError("give at least one flat (--flats) or dark (--darks)")
    with contextlib.ExitStack() as stack:
        wrap = progress or (lambda items, description: items)
        flat_images = [image for path in wrap(flats, "reading flats")
                       for image in _images(stack, Path(path), model)]
        dark_images = [image for path in wrap(darks, "reading darks")
                       for image in _images(stack, Path(path), model)]
        result = derive_flags(flat_images, dark_images, config, shape, width)
    dq = result.dq
    history = [f"Derived by dqref {__version__} (dqref derive)"]
    history += [f"flat: {Path(p).name}" for p in flats] + [f"dark: {Path(p).name}" for p in darks]
    history += config.history() + [f"reference_border used = {width}"]
    if manual_flags is not None:
        entries = read_manual_flags(manual_flags, shape)
        dq = apply_manual_flags(dq, entries)
        history.append(f"manual flags: {Path(manual_flags).name} ({len(entries)} entries)")
    model.dq = dq
    model.meta.history.extend(history)
    if not meta.get("description"):
        model.meta.description = f"Bad pixel mask for {instrument} {detector} from " \
                                 f"{len(flats)} flats and {len(darks)} darks"
    return model, DerivationSummary(result.rule_counts, model.histogram())


class RowReader:
    """One 2D image of a FITS file, read a block of rows at a time from disk.

    Memory maps would keep every page read so far resident; positioned reads do not, so
    twenty 4096 x 4096 inputs cost only the current block of each.
    """

    def __init__(self, path: Path, offset: int, shape: tuple[int, int], dtype: np.dtype):
        self.path, self.offset, self.shape, self.dtype = path, offset, shape, dtype

    def __getitem__(self, rows: slice) -> np.ndarray:
        start, stop, _ = rows.indices(self.shape[0])
        count = (stop - start) * self.shape[1]
        offset = self.offset + start * self.shape[1] * self.dtype.itemsize
        block = np.fromfile(self.path, dtype=self.dtype, count=count, offset=offset)
        return block.reshape(stop - start, self.shape[1]).astype(np.float32)


_FLOATS = {-32: np.dtype(">f4"), -64: np.dtype(">f8")}


def _images(stack: contextlib.ExitStack, path: Path, model: DQModel) -> list:
    """Check one input and return its 2D images as row readers (or arrays if scaled)."""
    try:
        hdulist = stack.enter_context(fits.open(path, memmap=False, lazy_load_hdus=False))
    except (OSError, ValueError) as error:
        raise DeriveInputError(f"{path}: cannot be read as FITS ({error})") from None
    header = hdulist[0].header
    for keyword, expected in (("INSTRUME", model.meta.name), ("DETECTOR", model.meta.detector)):
        value = str(header.get(keyword, expected)).strip().upper()
        if value != expected:
            raise DeriveInputError(f"{path}: {keyword} is {value}, expected {expected}")
    index = hdulist.index_of("SCI") if "SCI" in hdulist else 0
    hdu_header = hdulist[index].header
    shape = tuple(hdu_header.get(f"NAXIS{n}", 0) for n in range(hdu_header.get("NAXIS", 0), 0, -1))
    if len(shape) not in (2, 3):
        raise DeriveInputError(f"{path}: needs a 2D image or a 3D stack (SCI or primary)")
    if tuple(shape[-2:]) != model.detector_info.shape:
        raise DeriveInputError(f"{path}: image shape {tuple(shape[-2:])} differs from the "
                               f"{model.meta.detector} full frame {model.detector_info.shape}")
    planes = shape[0] if len(shape) == 3 else 1
    dtype = _FLOATS.get(hdu_header["BITPIX"])
    scaled = hdu_header.get("BSCALE", 1) != 1 or hdu_header.get("BZERO", 0) != 0
    if dtype is None or scaled:  # integers or scaled data: let astropy decode them
        data = np.asarray(hdulist[index].data, dtype=np.float32)
        return [data] if data.ndim == 2 else list(data)
    offset = hdulist.fileinfo(index)["datLoc"]
    plane_bytes = shape[-2] * shape[-1] * dtype.itemsize
    return [RowReader(path, offset + plane * plane_bytes, tuple(shape[-2:]), dtype)
            for plane in range(planes)]
