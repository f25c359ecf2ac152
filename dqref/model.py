"""DQModel: a static bad-pixel (DQ) reference held in memory.

A model is a 2D uint32 ``dq`` array plus the metadata that CRDS uses to select it. The
FITS layout lives in `dqref.reffile`; the rules that decide validity in
`dqref.validation`; this module only holds values and guards the ``dq`` array.

Examples
--------
The seed's walkthrough, with its typos fixed:

>>> import numpy as np
>>> from dqref import DQModel
>>> model = DQModel()
>>> model.meta.name = "IRIS"
>>> model.meta.detector = "IRIS1"
>>> model.dq = np.zeros((4096, 4096))         # float zeros become uint32
>>> model.flag([[10, 20], [30, 40]], "DEAD")  # exactly two pixels, (y, x)
>>> model.histogram().flags["DEAD"]
2
"""

from __future__ import annotations

import copy
import getpass
import os
from dataclasses import dataclass, field

import numpy as np

from dqref import flags
from dqref.detectors import Detector, get_detector
from dqref.histogram import FlagHistogram, flag_histogram

#: The default USEAFTER, which applies to every observation, so the seed's walkthrough
#: selects it.
DEFAULT_USEAFTER = "2000-01-01T00:00:00"
DEFAULT_PEDIGREE = "GROUND"
_MAX_FLAG = 2**32


@dataclass
class Subarray:
    """Where an array sits on the detector: FITS 1-indexed origin and size.

    ``xsize``/``ysize`` left as None mean "the size of the array" and are filled in when
    the model is written.
    """

    name: str = "FULL"
    xstart: int = 1
    ystart: int = 1
    xsize: int | None = None
    ysize: int | None = None

    def region(self, shape: tuple[int, int]) -> tuple[int, int, int, int]:
        """Return 0-indexed (ystart, xstart, ysize, xsize), sizes defaulting to ``shape``."""
        ysize = self.ysize if self.ysize is not None else shape[0]
        xsize = self.xsize if self.xsize is not None else shape[1]
        return self.ystart - 1, self.xstart - 1, int(ysize), int(xsize)


@dataclass
class ReferenceMeta:
    """Metadata of a DQ reference. ``name`` is the instrument, as in the seed."""

    name: str | None = None
    detector: str | None = None
    useafter: str = DEFAULT_USEAFTER
    pedigree: str = DEFAULT_PEDIGREE
    description: str | None = None
    author: str | None = None
    subarray: Subarray = field(default_factory=Subarray)
    history: list[str] = field(default_factory=list)
    reftype: str = "DQ"
    telescope: str | None = None

    @property
    def instrument(self) -> str | None:
        """The instrument name (an alias of ``name``)."""
        return self.name

    @instrument.setter
    def instrument(self, value: str | None) -> None:
        self.name = value


def as_dq_array(values, copy: bool = True) -> np.ndarray:
    """Return ``values`` as a 2D uint32 array, or raise naming the first bad pixel.

    Parameters
    ----------
    values : array-like
        Non-negative integers below 2**32, of any numeric dtype; floats must be
        integral (``np.zeros`` gives float64 zeros, which are accepted).
    copy : bool
        Copy a uint32 input (default). Only code that owns ``values`` passes False.

    Raises
    ------
    ValueError
        Wrong number of dimensions, non-numeric data, NaN or infinity, negative,
        fractional or too-large values. The message names one offending pixel (y, x).
    """
    array = np.asarray(values)
    if array.ndim != 2:
        raise ValueError(f"DQ must be a 2D array (rows, columns); got {array.ndim} dimensions "
                         f"with shape {array.shape}")
    if array.dtype == np.uint32:
        return array.copy() if copy else array
    if array.dtype.kind not in "biuf":
        raise ValueError(f"DQ must hold integers; got dtype {array.dtype}")
    if array.dtype.kind == "f":
        _reject(~np.isfinite(array), array, "a non-finite value")
        _reject(array != np.floor(array), array, "a fractional value")
    if array.dtype.kind in "if":
        _reject(array < 0, array, "a negative value")
    if array.dtype.kind in "iuf" and array.dtype.itemsize >= 4:
        _reject(array >= _MAX_FLAG, array, "a value >= 2**32")
    return array.astype(np.uint32)


def _reject(bad: np.ndarray, array: np.ndarray, what: str) -> None:
    if bad.any():
        y, x = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"DQ has {what} ({array[y, x]!r}) at pixel (y={y}, x={x}); "
                         f"{int(np.count_nonzero(bad))} such pixels in all")


class DQModel:
    """A DQ reference: a 2D uint32 ``dq`` image, its ``DQ_DEF`` table and metadata.

    Parameters
    ----------
    dq : array-like, optional
        The flags (see `as_dq_array` for what is accepted).
    dq_def : numpy structured array, optional
        The flag definitions stored with the array; defaults to the standard table.
    **meta : str
        Initial metadata fields (``name``/``instrument``, ``detector``, ``useafter``,
        ``pedigree``, ``description``, ``author``).
    """

    def __init__(self, dq=None, *, dq_def: np.ndarray | None = None, **meta):
        self.meta = ReferenceMeta()
        for key, value in meta.items():
            if not hasattr(self.meta, key):
                raise TypeError(f"unknown metadata field {key!r}")
            setattr(self.meta, key, value)
        self._dq: np.ndarray | None = None
        if dq is not None:
            self.dq = dq
        self.dq_def = flags.dq_def_rows() if dq_def is None else dq_def

    @classmethod
    def blank(cls, instrument: str, detector: str, **meta) -> DQModel:
        """Return an all-good full-frame model for a known detector."""
        info = get_detector(instrument, detector)
        return cls(np.zeros(info.shape, dtype=np.uint32), name=info.instrument,
                   detector=info.name, **meta)

    @classmethod
    def read(cls, path: str | os.PathLike) -> DQModel:
        """Read a DQ reference (ours, or a JWST MASK reference); verify its checksums."""
        from dqref.reffile import read_reference

        return read_reference(path)

    # -- the array -------------------------------------------------------------------
    @property
    def dq(self) -> np.ndarray | None:
        """The 2D uint32 flag array (assign any integral array; it is copied)."""
        return self._dq

    @dq.setter
    def dq(self, values) -> None:
        self._dq = as_dq_array(values)

    @property
    def shape(self) -> tuple[int, int] | None:
        return None if self._dq is None else self._dq.shape

    @property
    def detector_info(self) -> Detector:
        """The detector table entry for ``meta.name``/``meta.detector``."""
        return get_detector(self.meta.name, self.meta.detector)

    def flag(self, positions, flag: int | str) -> None:
        """OR a flag into exactly the given pixels.

        This is the right way to do what the seed's
        ``f.dq[np.random.randint(0, 4096, size=(10, 2))] = 1024`` tried: that line
        indexes whole rows and replaces their flags instead of adding one.

        Parameters
        ----------
        positions : array-like of shape (N, 2)
            0-indexed (y, x) pixel positions.
        flag : int or str
            A flag value or name(s), e.g. ``"DEAD"`` or ``"DEAD|DO_NOT_USE"``.

        Raises
        ------
        ValueError
            ``positions`` is not (N, 2) integers, or a position lies outside the array.
        """
        if self._dq is None:
            raise ValueError("model.dq is not set; assign an array (or use DQModel.blank) first")
        bits = np.uint32(flags.value(flag))
        yx = np.asarray(positions)
        if yx.size == 0:
            return
        if yx.ndim != 2 or yx.shape[1] != 2 or yx.dtype.kind not in "iu":
            raise ValueError(f"positions must be an (N, 2) integer array of (y, x); got shape "
                             f"{yx.shape} and dtype {yx.dtype}")
        rows, columns = self._dq.shape
        outside = (yx[:, 0] < 0) | (yx[:, 0] >= rows) | (yx[:, 1] < 0) | (yx[:, 1] >= columns)
        if outside.any():
            y, x = (int(v) for v in yx[np.argmax(outside)])
            raise ValueError(f"position (y={y}, x={x}) is outside the {rows} x {columns} DQ array")
        np.bitwise_or.at(self._dq, (yx[:, 0], yx[:, 1]), bits)

    # -- views -----------------------------------------------------------------------
    def standard_dq(self) -> np.ndarray:
        """Return the flags in the standard bits, translated by the model's ``DQ_DEF``.

        A JWST mask may put a flag on another bit (its ``DQ_DEF`` says DEAD is value 2,
        say); stdatamodels translates such a mask by name when JWST opens it, and so do
        this view, `histogram` and ``dqref show``. Bits of flags the standard table does
        not know stay where they are. ``dq`` itself is the file's raw integers; this
        returns it unchanged (not a copy) when no translation is needed.

        Raises
        ------
        DQDefError
            The ``DQ_DEF`` cannot be trusted (`dqref.flags.dq_def_problems`).
        """
        if self._dq is None:
            raise ValueError("model.dq is not set")
        return flags.translate(self._dq, flags.known_translation_table(self.dq_def))

    def histogram(self) -> FlagHistogram:
        """Return per-flag pixel counts of `standard_dq` (see `dqref.histogram.flag_histogram`)."""
        return flag_histogram(self.standard_dq())

    def validate(self, config=None) -> list:
        """Return every validation finding (an empty list means valid).

        See `dqref.validation` for the rules.
        """
        from dqref.validation import validate

        return validate(self, config=config)

    def write(self, path: str | os.PathLike, overwrite: bool = False) -> None:
        """Validate, then write the FITS reference atomically (temporary file + rename).

        Raises
        ------
        InvalidReferenceError
            The model has validation errors; nothing is written.
        FileExistsRefusedError
            ``path`` exists and ``overwrite`` is False.
        """
        from dqref.reffile import write_reference

        write_reference(self, path, overwrite=overwrite)

    def copy(self) -> DQModel:
        """Return an independent copy (array and metadata)."""
        return copy.deepcopy(self)

    def filled_meta(self) -> ReferenceMeta:
        """Return a copy of the metadata with defaults filled from the array and detector."""
        meta = copy.deepcopy(self.meta)
        if meta.name:
            meta.name = meta.name.upper()
        if meta.detector:
            meta.detector = meta.detector.upper()
        if self._dq is not None:
            meta.subarray.ysize = meta.subarray.ysize or self._dq.shape[0]
            meta.subarray.xsize = meta.subarray.xsize or self._dq.shape[1]
        if not meta.description:
            meta.description = f"Bad pixel mask for {meta.name} {meta.detector}"
        if not meta.author:
            meta.author = _login_name()
        return meta

    def __repr__(self) -> str:
        return (f"DQModel(instrument={self.meta.name!r}, detector={self.meta.detector!r}, "
                f"shape={self.shape}, useafter={self.meta.useafter!r})")


def _login_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers): not worth failing a write for
        return "UNKNOWN"
