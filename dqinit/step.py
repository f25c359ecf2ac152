"""DQInitStep: look up the DQ reference, apply it to a ramp, write the result and status.

The step is thin: it opens files, asks the local CRDS cache for the reference, calls the
numpy core (`dqinit.core`) and records the status. It follows JWST's dq_init:

1. the reference comes from CRDS (or ``override_dq``); no matching rule means SKIPPED;
2. PIXELDQ (2D uint32) and GROUPDQ (4D uint8) are created when absent;
3. a subarray of a full-frame reference is extracted to match the science region;
4. the reference flags are ORed into PIXELDQ, translated by name if its DQ_DEF differs;
5. DO_NOT_USE in the reference is ORed into every group of GROUPDQ;
6. an optional user DQ mask is ORed in like the reference.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from astropy.io import fits

from dqinit import core, ramp
from dqinit.errors import MaskShapeError, RampFormatError, ReferenceSelectionError
from dqref import __version__
from dqref.cache.local_cache import LocalCache
from dqref.errors import DQRefError
from dqref.model import DQModel, as_dq_array
from dqref.validation import errors as error_findings
from dqref.validation import validate

COMPLETE, SKIPPED, FAILED = "COMPLETE", "SKIPPED", "FAILED"
OUTPUT_SUFFIX = "_dqinit"
SOFTWARE_VERSION = f"ligeriri-dq {__version__}"
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
    ramp: ramp.Ramp | None = None

    def to_record(self) -> dict:
        """Return a small JSON-ready dict (no arrays)."""
        return {"input": self.input, "output": str(self.output) if self.output else None,
                "status": self.status, "reference": self.reference, "context": self.context,
                "message": self.message, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class ReferenceChoice:
    """Which reference a ramp gets: its path (None: no rule), its R_DQ name, the context."""

    path: Path | None
    name: str
    context: str
    reason: str = ""

    @property
    def found(self) -> bool:
        return self.path is not None


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
        Use this reference instead of asking CRDS (a JWST MASK file works too).
    user_dq : path-like, optional
        An extra 2D mask of the science image plane's shape, ORed in like the reference.
    context : str, optional
        A pmap name; default the cache's current context.
    """

    def __init__(self, crds_path: str | os.PathLike | None = None,
                 override_dq: str | os.PathLike | None = None,
                 user_dq: str | os.PathLike | None = None, context: str | None = None):
        self.override_dq = Path(override_dq) if override_dq else None
        self.user_dq = Path(user_dq) if user_dq else None
        self.crds_path = crds_path
        self.context = context
        self._cache: LocalCache | None = None
        self._masks: dict[Path, _Mask] = {}  # each reference is loaded at most once
        self._user_mask: np.ndarray | None = None

    @property
    def cache(self) -> LocalCache:
        if self._cache is None:
            self._cache = LocalCache(self.crds_path)
        return self._cache

    # -- public -----------------------------------------------------------------------
    def run(self, ramp_input, output: str | os.PathLike | None = None,
            output_dir: str | os.PathLike | None = None, in_place: bool = False,
            overwrite: bool = False) -> DQInitResult:
        """Run the step on a ramp file or an in-memory `dqinit.ramp.Ramp`.

        Parameters
        ----------
        ramp_input : path-like or Ramp
            A ramp file, or a Ramp object (which is not modified: the result carries a
            new Ramp in ``result.ramp``).
        output : path-like, optional
            Output file (default: `default_output`). Never the input unless ``in_place``.
        in_place : bool
            Update the input file: only its DQ arrays and primary header are written
            when it already has both DQ arrays; otherwise it is rewritten atomically.

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
        if isinstance(ramp_input, ramp.Ramp):
            result = self._run_in_memory(ramp_input)
        else:
            result = self._run_file(Path(ramp_input), output, output_dir, in_place, overwrite)
        return _with_time(result, time.perf_counter() - started)

    def select_reference(self, header) -> ReferenceChoice:
        """Return the reference for a ramp's primary header (override, else CRDS)."""
        if self.override_dq is not None:
            return ReferenceChoice(self.override_dq, f"user:{self.override_dq.name}", "N/A",
                                   "override")
        answer = self.cache.bestref(ramp.selection_header(header), context=self.context)
        if not answer.found:
            return ReferenceChoice(None, "N/A", answer.context, answer.reason)
        if not answer.path.is_file():
            raise ReferenceSelectionError(f"context {answer.context} selects {answer.reference}"
                                          f" but {answer.path} does not exist")
        return ReferenceChoice(answer.path, f"crds://{answer.reference}", answer.context)

    # -- file input ----------------------------------------------------------------------
    def _run_file(self, path: Path, output, output_dir, in_place: bool,
                  overwrite: bool) -> DQInitResult:
        layout = ramp.read_layout(path)
        target = path if in_place else Path(output) if output else default_output(
            path, Path(output_dir) if output_dir else None)
        if not in_place and target.resolve() == path.resolve():
            raise RampFormatError(f"{path}: output would overwrite the input; use --in-place")
        choice = self.select_reference(layout.header)
        if not choice.found:
            message = f"no DQ reference matches under {choice.context} ({choice.reason}); " \
                      "step SKIPPED, data unchanged"
            log.warning("%s: %s", path, message)
            primary = ramp.status_header(layout.header, SKIPPED, "N/A", choice.context,
                                         SOFTWARE_VERSION)
            ramp.write_ramp(layout, target, primary, None, None, overwrite=overwrite or in_place)
            return DQInitResult(str(path), SKIPPED, target, None, choice.context, message)
        mask = self._science_mask(choice.path, layout.header, layout.image_shape, str(path))
        existing_pixeldq = ramp.read_pixeldq(layout)
        # Without an existing PIXELDQ the output is the mask itself: it is only read from here.
        pixeldq = core.merge_pixeldq(existing_pixeldq, mask) if existing_pixeldq is not None \
            else mask
        dnu_plane = core.do_not_use_plane(mask)
        existing_groupdq = ramp.existing_groupdq_planes(layout)

        def groupdq_plane(integration: int, group: int) -> np.ndarray:
            if existing_groupdq is None:
                return dnu_plane
            return core.merge_groupdq_plane(existing_groupdq(integration, group), dnu_plane)

        primary = ramp.status_header(layout.header, COMPLETE, choice.name, choice.context,
                                     SOFTWARE_VERSION)
        if not (in_place and ramp.update_in_place(layout, primary, pixeldq, groupdq_plane)):
            ramp.write_ramp(layout, target, primary, pixeldq, groupdq_plane,
                            overwrite=overwrite or in_place)
        return DQInitResult(str(path), COMPLETE, target, choice.name, choice.context)

    # -- in-memory input ----------------------------------------------------------------
    def _run_in_memory(self, science: ramp.Ramp) -> DQInitResult:
        science.check()
        choice = self.select_reference(science.header)
        if not choice.found:
            header = ramp.status_header(science.header, SKIPPED, "N/A", choice.context,
                                        SOFTWARE_VERSION)
            unchanged = ramp.Ramp(header, science.sci, science.pixeldq, science.groupdq,
                                  science.err)
            return DQInitResult("<memory>", SKIPPED, None, None, choice.context,
                                f"no DQ reference matches under {choice.context} "
                                f"({choice.reason}); step SKIPPED", ramp=unchanged)
        image_shape = science.sci.shape[-2:]
        mask = self._science_mask(choice.path, science.header, image_shape, "<memory>")
        pixeldq = science.pixeldq if science.pixeldq is not None else \
            np.zeros(image_shape, np.uint32)
        groupdq = science.groupdq if science.groupdq is not None else \
            np.zeros(science.sci.shape, np.uint8)
        new_pixeldq, new_groupdq = core.dq_init(pixeldq, groupdq, mask)
        header = ramp.status_header(science.header, COMPLETE, choice.name, choice.context,
                                    SOFTWARE_VERSION)
        result = ramp.Ramp(header, science.sci, new_pixeldq, new_groupdq, science.err)
        return DQInitResult("<memory>", COMPLETE, None, choice.name, choice.context,
                            ramp=result)

    # -- masks --------------------------------------------------------------------------
    def _science_mask(self, reference_path: Path, header, image_shape, source: str) -> np.ndarray:
        reference = self._reference_mask(reference_path)
        where = ramp.geometry(header, tuple(image_shape), source)
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
                with fits.open(self.user_dq) as hdulist:
                    hdu = hdulist["DQ"] if "DQ" in hdulist else hdulist[0]
                    data = hdu.data
            except (OSError, ValueError) as error:
                raise MaskShapeError(f"user DQ {self.user_dq}: cannot be read ({error})") \
                    from None
            if data is None or data.ndim != 2:
                raise MaskShapeError(f"user DQ {self.user_dq}: needs a 2D image")
            try:
                self._user_mask = as_dq_array(data)
            except ValueError as error:
                raise MaskShapeError(f"user DQ {self.user_dq}: {error}") from None
        return self._user_mask


def _with_time(result: DQInitResult, seconds: float) -> DQInitResult:
    return replace(result, seconds=seconds)
