"""DQInitStep: look up the DQ reference, apply it to a ramp, write the result and status.

The step is thin: it opens the ramp through its layout adapter (`dqinit.layouts`), asks
the local CRDS cache for the reference, cuts the reference to the science region with
the numpy core (`dqinit.core`) and lets the adapter stream the output. It follows JWST's
dq_init:

1. the reference comes from CRDS (or ``override_dq``; ``'N/A'`` skips the step); no
   matching rule means SKIPPED;
2. the DQ arrays are created when absent (JWST layout: PIXELDQ 2D uint32 and GROUPDQ 4D
   uint8; level-0 layout: PIXELDQ 2D uint32 beside the per-read DQ);
3. a subarray of a full-frame reference is extracted to match the science region;
4. the reference flags are ORed into PIXELDQ, translated by name if its DQ_DEF differs;
5. DO_NOT_USE in the reference is ORed into every group (and read) of the ramp;
6. an optional user DQ mask is ORed in like the reference.

There is one path: a file in, a file out. An in-memory `dqinit.ramp.Ramp` (and a
datamodel, through the stpipe wrapper) is written to a temporary file first, so every
caller runs exactly what the command line runs.

The local CRDS cache (and with it crds, about 0.2 s to import) and the reference checks
are imported only when a reference is looked up, not for ``override_dq``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from astropy.io import fits

from dqinit import core
from dqinit.errors import MaskShapeError, RampFormatError, ReferenceSelectionError
from dqinit.layouts import RampFile, open_ramp
from dqinit.layouts.hdus import regular_file
from dqinit.layouts.primary import StepStatus, geometry, selection_header
from dqinit.ramp import Ramp
from dqref import __version__
from dqref.errors import DQRefError
from dqref.model import DQModel, as_dq_array

if TYPE_CHECKING:
    from dqref.cache.local_cache import BestRef, LocalCache

COMPLETE, SKIPPED, FAILED = "COMPLETE", "SKIPPED", "FAILED"
OUTPUT_SUFFIX = "_dqinit"
SOFTWARE_VERSION = f"ligeriri-dq {__version__}"
#: ``override_dq`` value that skips the step, as in stpipe (``--override_dq=N/A``).
SKIP_OVERRIDE = "N/A"
log = logging.getLogger("dqinit")


@dataclass(frozen=True)
class DQInitResult:
    """What one run did: status, reference and context used, where the output went."""

    input: str
    status: str
    output: Path | None = None
    reference: str | None = None
    context: str | None = None
    message: str = ""
    seconds: float = 0.0
    ramp: Ramp | None = None
    warnings: tuple[str, ...] = field(default=())

    def to_record(self) -> dict:
        """Return a small JSON-ready dict (no arrays)."""
        return {"input": self.input, "output": str(self.output) if self.output else None,
                "status": self.status, "reference": self.reference, "context": self.context,
                "message": self.message, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class _Mask:
    """A reference mask in standard bits with its 0-indexed detector origin."""

    flags: np.ndarray
    origin: tuple[int, int]


def default_output(input_path: Path, output_dir: Path | None = None) -> Path:
    """Return ``<stem>_dqinit.fits`` beside the input (or in ``output_dir``).

    A trailing ``_uncal`` is replaced, as JWST replaces product suffixes.
    """
    stem = input_path.name.removesuffix(".fits")
    stem = stem.removesuffix("_uncal")
    return (output_dir or input_path.parent) / f"{stem}{OUTPUT_SUFFIX}.fits"


class DQInitStep:
    """The DQ initialization step.

    Parameters
    ----------
    crds_path : path-like, optional
        The local CRDS cache (default: ``$CRDS_PATH``, else ``~/crds_cache``).
    override_dq : path-like, optional
        Use this reference instead of asking CRDS (a JWST MASK file works too);
        ``'N/A'`` skips the step.
    user_dq : path-like, optional
        An extra 2D mask of the science image plane's shape, ORed in like the reference.
    context : str, optional
        A pmap name; default the cache's current context.
    """

    def __init__(self, crds_path: str | os.PathLike | None = None,
                 override_dq: str | os.PathLike | None = None,
                 user_dq: str | os.PathLike | None = None, context: str | None = None):
        self.skip = str(override_dq).strip().upper() == SKIP_OVERRIDE if override_dq \
            else False
        self.override_dq = Path(override_dq) if override_dq and not self.skip else None
        self.user_dq = Path(user_dq) if user_dq else None
        self.crds_path = crds_path
        self.context = context
        self._cache: LocalCache | None = None
        self._masks: dict[Path, _Mask] = {}  # each reference is loaded at most once
        self._regions: dict[tuple, np.ndarray] = {}  # and cut once per science region
        self._user_mask: np.ndarray | None = None

    @property
    def cache(self) -> LocalCache:
        if self._cache is None:
            from dqref.cache.local_cache import LocalCache

            self._cache = LocalCache(self.crds_path)
        return self._cache

    # -- public -----------------------------------------------------------------------
    def run(self, ramp_input, output: str | os.PathLike | None = None,
            output_dir: str | os.PathLike | None = None, in_place: bool = False,
            overwrite: bool = False) -> DQInitResult:
        """Run the step on a ramp file (either layout) or an in-memory `Ramp`.

        Parameters
        ----------
        ramp_input : path-like or Ramp
            A ramp file, or a Ramp object (which is not modified: the result carries a
            new Ramp in ``result.ramp``).
        output : path-like, optional
            Output file (default: `default_output`). Never the input unless ``in_place``.
        in_place : bool
            Update the input file: only its DQ arrays and headers are written when it
            already has its DQ arrays; otherwise it is rewritten atomically (same
            permissions). A link is followed to the file it names.

        Returns
        -------
        DQInitResult

        Raises
        ------
        DQRefError
            Bad input or a bad reference (RampFormatError, SubarrayError,
            ReferenceSelectionError, MaskShapeError, ...).
        """
        started = time.perf_counter()
        if isinstance(ramp_input, Ramp):
            result = self._run_in_memory(ramp_input)
        else:
            result = self._run_file(Path(ramp_input), output, output_dir, in_place, overwrite)
        return replace(result, seconds=time.perf_counter() - started)

    def select_reference(self, header) -> BestRef:
        """Return the reference for a ramp's primary header (override, else CRDS)."""
        from dqref.cache.local_cache import BestRef

        if self.override_dq is not None:
            return BestRef.user_override(self.override_dq)
        answer = self.cache.bestref(selection_header(header), context=self.context)
        if answer.found and not answer.path.is_file():
            raise ReferenceSelectionError(f"context {answer.context} selects {answer.reference}"
                                          f" but {answer.path} does not exist")
        return answer

    # -- file input ----------------------------------------------------------------------
    def _run_file(self, path: Path, output, output_dir, in_place: bool,
                  overwrite: bool) -> DQInitResult:
        if in_place:
            path = _writable_target(path)
        ramp_file = open_ramp(path)
        target = path if in_place else Path(output) if output else default_output(
            path, Path(output_dir) if output_dir else None)
        if not in_place and target.resolve() == path.resolve():
            raise RampFormatError(f"{path}: output would overwrite the input; use --in-place")
        where, warnings = geometry(ramp_file.header, ramp_file.image_shape, str(path))
        for warning in warnings:
            log.warning("%s", warning)
        mode = path.stat().st_mode if in_place else None
        if self.skip:
            return self._skip(ramp_file, target, path, "N/A", in_place or overwrite, mode,
                              f"override_dq = {SKIP_OVERRIDE}", warnings)
        choice = self.select_reference(ramp_file.header)
        if not choice.found:
            return self._skip(ramp_file, target, path, choice.context, in_place or overwrite,
                              mode, f"no DQ reference matches under {choice.context} "
                              f"({choice.reason}); data unchanged", warnings)
        log.info("Using DQ reference file %s", choice.path)
        mask = self._science_mask(choice.path, where)
        _log_creations(ramp_file)
        status = StepStatus(COMPLETE, choice.keyword_value, choice.context, SOFTWARE_VERSION)
        if not (in_place and ramp_file.update_in_place(status, mask)):
            ramp_file.write(target, status, mask, overwrite=overwrite or in_place, mode=mode)
        return DQInitResult(str(path), COMPLETE, target, choice.keyword_value, choice.context,
                            warnings=tuple(warnings))

    def _skip(self, ramp_file: RampFile, target: Path, path: Path, context: str,
              overwrite: bool, mode, message: str, warnings) -> DQInitResult:
        log.warning("No DQ reference file found" if context != "N/A" or not self.skip
                    else "DQ reference override is N/A")
        log.warning("DQ initialization step will be skipped")
        status = StepStatus(SKIPPED, "N/A", context, SOFTWARE_VERSION)
        ramp_file.write(target, status, None, overwrite=overwrite, mode=mode)
        return DQInitResult(str(path), SKIPPED, target, None, context, message,
                            warnings=tuple(warnings))

    # -- in-memory input ----------------------------------------------------------------
    def _run_in_memory(self, science: Ramp) -> DQInitResult:
        """Write ``science`` to a temporary file, run the file path, read the result."""
        with tempfile.TemporaryDirectory(prefix="dqinit-") as folder:
            source = science.write(Path(folder) / "ramp.fits")
            result = self._run_file(source, Path(folder) / "ramp_dqinit.fits", None,
                                    False, False)
            return replace(result, input="<memory>", output=None,
                           ramp=Ramp.read(result.output))

    # -- masks --------------------------------------------------------------------------
    def _science_mask(self, reference_path: Path, where) -> np.ndarray:
        """The mask of one science region: the same array for every ramp of that region,
        so that the writers derive its planes once in a batch."""
        reference = self._reference_mask(reference_path)
        if tuple(where.shape) != tuple(reference.flags.shape):
            log.info("Extracting mask subarray to match science data")
        key = (reference_path.resolve(), where.origin, where.shape)
        if key not in self._regions:
            self._regions[key] = self._new_science_mask(reference, where)
        return self._regions[key]

    def _new_science_mask(self, reference: _Mask, where) -> np.ndarray:
        region = core.extract_subarray(reference.flags, reference.origin, where.origin,
                                       where.shape)
        user = self._user_dq()
        if user is None:
            return region
        if user.shape != region.shape:
            raise MaskShapeError(f"user DQ {self.user_dq} is {user.shape[0]} x {user.shape[1]} "
                                 f"but the science image plane is {region.shape[0]} x "
                                 f"{region.shape[1]}")
        return region | user

    def _reference_mask(self, path: Path) -> _Mask:
        key = path.resolve()
        if key not in self._masks:
            try:
                model = DQModel.read(path)
            except DQRefError as error:
                raise ReferenceSelectionError(f"DQ reference {path} is unusable: {error}") \
                    from None
            if self.override_dq is None:
                from dqref.validation import errors as error_findings
                from dqref.validation import validate

                problems = error_findings(validate(model, errors_only=True))
                if problems:
                    raise ReferenceSelectionError(
                        f"DQ reference {path} is invalid: "
                        + "; ".join(f"{f.where}: {f.message}" for f in problems))
            try:
                flags = core.standard_mask(model.dq, model.dq_def)
            except DQRefError as error:
                raise ReferenceSelectionError(f"DQ reference {path}: {error}") from None
            origin = (model.meta.subarray.ystart - 1, model.meta.subarray.xstart - 1)
            self._masks[key] = _Mask(flags, origin)
        return self._masks[key]

    def _user_dq(self) -> np.ndarray | None:
        if self.user_dq is None:
            return None
        if self._user_mask is None:
            try:
                regular_file(self.user_dq)
                with fits.open(self.user_dq) as hdulist:
                    hdu = hdulist["DQ"] if "DQ" in hdulist else hdulist[0]
                    data = hdu.data
            except RampFormatError as error:
                raise MaskShapeError(f"user DQ {error}") from None
            except (OSError, ValueError, TypeError, KeyError) as error:
                raise MaskShapeError(f"user DQ {self.user_dq}: cannot be read ({error})") \
                    from None
            if data is None or data.ndim != 2:
                raise MaskShapeError(f"user DQ {self.user_dq}: needs a 2D image")
            try:
                self._user_mask = as_dq_array(data)
            except ValueError as error:
                raise MaskShapeError(f"user DQ {self.user_dq}: {error}") from None
        return self._user_mask


def _writable_target(path: Path) -> Path:
    """Return the file an in-place update writes: links resolved, write permission checked."""
    real = regular_file(path).resolve()
    # The mode bits count even for root, who may write anything: a file marked
    # read-only is not for --in-place.
    if not os.access(real, os.W_OK) or not real.stat().st_mode & 0o222:
        raise RampFormatError(f"{real}: is not writable; --in-place would change a file "
                              "you may not write (give an output name instead)")
    return real


def _log_creations(ramp_file: RampFile) -> None:
    """Say which DQ arrays the step creates, as JWST's dq_init does."""
    for name in ramp_file.arrays_to_create():
        log.info("Creating %s array", name)
