"""Slope images in FITS files: the input layout of `dqref derive` (keywords live here only).

A slope (count-rate) file holds a 2D image or a 3D stack of them (one per integration) in
its ``SCI`` extension or, failing that, its primary HDU. Its INSTRUME and DETECTOR
(primary header, else the image's) must be the detector being derived, and its images
that detector's full frame.

Pixels are read when the numpy core asks for rows: each `SlopeImage` reads a block of rows
from disk (`astropy.io.fits` ``section``), so twenty 4096 x 4096 inputs cost only the
current block of each.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from dqref.detectors import Detector
from dqref.errors import DQRefError

#: The extension holding the slopes; the primary HDU is used when there is none.
SCIENCE_EXTENSION = "SCI"
INSTRUMENT_KEYWORD = "INSTRUME"
DETECTOR_KEYWORD = "DETECTOR"


class DeriveInputError(DQRefError, ValueError):
    """An input image cannot be read or disagrees with the detector (name, shape)."""


@dataclass(frozen=True)
class SlopeImage:
    """One 2D slope image of an open FITS file, read from disk a block of rows at a time.

    ``image[start:stop]`` returns those rows as float32 (BSCALE/BZERO applied).
    """

    hdu: fits.ImageHDU | fits.PrimaryHDU
    plane: int | None
    shape: tuple[int, int]

    def __getitem__(self, rows: slice) -> np.ndarray:
        if not isinstance(rows, slice):
            raise TypeError("a SlopeImage is read by row slices: image[start:stop]")
        key = rows if self.plane is None else (self.plane, rows)
        return np.asarray(self.hdu.section[key], dtype=np.float32)


@dataclass(frozen=True)
class SlopeFile:
    """What a slope file says about itself, and its images (readers, not data)."""

    path: Path
    extension: str
    instrument: str | None
    detector: str | None
    data_shape: tuple[int, ...]
    images: tuple[SlopeImage, ...]

    def describe(self) -> str:
        """Return ``path [EXT] N image(s)`` (ASCII, for HISTORY)."""
        count = len(self.images)
        name = str(self.path).encode("ascii", "backslashreplace").decode("ascii")
        return f"{name} [{self.extension}] {count} image{'s' if count != 1 else ''}"


def open_slope_file(path: str | os.PathLike, stack: contextlib.ExitStack) -> SlopeFile:
    """Open a slope file (kept open by ``stack``) and describe it.

    Of the pixels, only the last row of each image is read, so that a truncated file
    fails here rather than halfway through combining.

    Raises
    ------
    DeriveInputError
        The file is missing, not FITS, truncated, or has no 2D image or 3D stack in SCI
        or the primary HDU; the message names the file.
    """
    path = Path(path)
    with warnings.catch_warnings():
        # A truncated file is refused below, with its name; astropy's warning adds nothing.
        warnings.filterwarnings("ignore", "File may have been truncated", AstropyUserWarning)
        return _open_slope_file(path, stack)


def _open_slope_file(path: Path, stack: contextlib.ExitStack) -> SlopeFile:
    try:
        hdulist = stack.enter_context(fits.open(path, memmap=False))
        extension = SCIENCE_EXTENSION if SCIENCE_EXTENSION in hdulist else "PRIMARY"
        hdu = hdulist[extension]
        primary = hdulist[0].header
    except FileNotFoundError:
        raise DeriveInputError(f"{path}: no such file") from None
    except (OSError, ValueError, TypeError) as error:
        raise DeriveInputError(f"{path}: cannot be read as FITS ({error})") from None
    if not isinstance(hdu, fits.ImageHDU | fits.PrimaryHDU):
        raise DeriveInputError(f"{path}: {extension} is a {type(hdu).__name__}, not an image")
    data_shape = tuple(hdu.shape) if hdu.header.get("NAXIS", 0) else ()
    if len(data_shape) not in (2, 3):
        what = f"{len(data_shape)}D data" if data_shape else "no data"
        raise DeriveInputError(f"{path}: {extension} has {what}; expected a 2D slope image "
                               "or a 3D stack of them")
    image_shape = data_shape[-2:]
    planes = [None] if len(data_shape) == 2 else range(data_shape[0])
    images = tuple(SlopeImage(hdu, plane, image_shape) for plane in planes)
    try:  # the last row of each image: a truncated file fails here, not halfway through
        for image in images:
            image[image_shape[0] - 1:]
    except (OSError, ValueError) as error:
        raise DeriveInputError(f"{path}: the {extension} data cannot be read; is the file "
                               f"truncated? ({error})") from None
    return SlopeFile(
        path=path, extension=extension,
        instrument=_keyword(INSTRUMENT_KEYWORD, primary, hdu.header),
        detector=_keyword(DETECTOR_KEYWORD, primary, hdu.header),
        data_shape=data_shape, images=images)


def disagreements(slope_file: SlopeFile, detector: Detector) -> list[str]:
    """Return every way ``slope_file`` disagrees with ``detector`` (empty: it fits).

    A missing INSTRUME or DETECTOR is not a disagreement (simulations often lack them).
    """
    problems = []
    # A detector's aliases (IRIS1 for IMG1) name the same detector.
    for keyword, found, expected, accepted in (
            (INSTRUMENT_KEYWORD, slope_file.instrument, detector.instrument,
             (detector.instrument,)),
            (DETECTOR_KEYWORD, slope_file.detector, detector.name, detector.names)):
        if found is not None and found.strip().upper() not in {n.upper() for n in accepted}:
            problems.append(f"{slope_file.path}: {keyword} is {found}, expected {expected}")
    image_shape = slope_file.data_shape[-2:]
    if image_shape != detector.shape:
        problems.append(f"{slope_file.path}: image shape {image_shape[0]} x {image_shape[1]} "
                        f"differs from the {detector.name} full frame "
                        f"{detector.shape[0]} x {detector.shape[1]}")
    return problems


@contextlib.contextmanager
def open_slope_files(flats: Sequence[str | os.PathLike], darks: Sequence[str | os.PathLike],
                     detector: Detector,
                     progress: Callable[[Iterable, str], Iterable] | None = None,
                     ) -> Iterator[tuple[list[SlopeFile], list[SlopeFile]]]:
    """Open and check every flat and dark; yield ``(flat_files, dark_files)`` while open.

    Every file is checked before any is used, and every problem is reported at once.

    Raises
    ------
    DeriveInputError
        Some files cannot be read, or disagree with ``detector`` (INSTRUME, DETECTOR,
        image shape), or a file is given twice; the message names each file and problem.
    """
    problems = []
    seen: dict[Path, str] = {}
    with contextlib.ExitStack() as stack:
        opened: dict[str, list[SlopeFile]] = {"flat": [], "dark": []}
        for kind, paths in (("flat", flats), ("dark", darks)):
            for path in progress(paths, f"checking {kind}s") if progress else paths:
                key = Path(path).resolve()
                if key in seen:
                    problems.append(f"{path}: given twice (as a {seen[key]} and as a {kind})")
                    continue
                seen[key] = kind
                try:
                    slope_file = open_slope_file(path, stack)
                except DeriveInputError as error:
                    problems.append(str(error))
                    continue
                problems += disagreements(slope_file, detector)
                opened[kind].append(slope_file)
        if problems:
            count = f"{len(problems)} input problems: " if len(problems) > 1 else ""
            raise DeriveInputError(count + "; ".join(problems))
        yield opened["flat"], opened["dark"]


def images_of(files: Iterable[SlopeFile]) -> list[SlopeImage]:
    """Return the 2D images of ``files`` in order (a 3D stack gives one per plane)."""
    return [image for slope_file in files for image in slope_file.images]


def _keyword(name: str, *headers: fits.Header) -> str | None:
    for header in headers:
        value = header.get(name)
        if value is not None and str(value).strip():
            return str(value).strip().upper()
    return None
