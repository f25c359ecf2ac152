"""A local CRDS cache for IRIS and Liger: initialise, register references, look them up.

Layout (as crds expects it for the ``ligeriri`` observatory)::

    <root>/mappings/ligeriri/ligeriri_0002.pmap, ligeriri_iris_0002.imap,
                             ligeriri_iris_dq_0001.rmap, ...
    <root>/references/ligeriri/iris/iris_dq_0001.fits
    <root>/config/ligeriri/server_config      the current context (crds's own format)
    <root>/config/ligeriri/ref_cache_subdir_mode   "instrument" (read by crds)
    <root>/.dqref/rules/ligeriri_0002.pmap.json    crds's rules of a context, verified
                                                   (`dqref.cache.rules_index`; crds ignores it)

Publishing is crash-safe: every file is written under a temporary name and linked into
place (never overwriting), and the current-context pointer is replaced last, so a crash
at any point leaves the cache at its previous context (``tests/test_cache_safety.py``
kills real processes through the ``on_publish_step`` hook). Concurrent writers are serialised
by a file lock. Mappings are immutable once published, so loaded contexts are memoised.

Hostile folders are refused (`dqref.cache.filesystem`): nothing is written through a link
that leads outside the cache, a full or read-only disk is one line naming the path, a
FIFO is never opened, and serials are never reused (`dqref.cache.serials`).

Reading the current context, and the rules of a context whose rules index is valid, imports
no crds (nor numpy, nor astropy): ``dqref cache list`` is fast. Everything else asks crds.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dqref.atomic import atomic_output, publish_text
from dqref.cache import crds_adapter, filesystem, rules_index
from dqref.cache.errors import (
    CacheError,
    CacheLockError,
    DuplicateReferenceError,
    SlotTakenError,
)
from dqref.cache.serials import next_free_serial
from dqref.detectors import (
    TABLE_FILE,
    canonical_detector,
    canonical_instrument,
    get_detector,
    instruments,
)
from dqref.errors import DQRefError, InvalidReferenceError, UnknownDetectorError

if TYPE_CHECKING:
    from dqref.model import DQModel

OBSERVATORY = crds_adapter.OBSERVATORY
INSTRUMENTS = ("iris", "liger")
#: The steps of `LocalCache.add`, in order, after each of which ``on_publish_step`` is called.
PUBLISH_STEPS = ("reference", "rmap", "imap", "pmap")
#: How long a writer waits for the cache lock held by another process, in seconds.
LOCK_TIMEOUT = 600
#: A context name: a plain file name ending in .pmap (no folder, nothing to escape with).
_PMAP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,200}\.pmap")
#: Header keys (upper case) naming the instrument and the detector, FITS and data model.
_INSTRUMENT_KEYS = ("INSTRUME", "META.INSTRUMENT.NAME")
_DETECTOR_KEYS = ("DETECTOR", "META.INSTRUMENT.DETECTOR")

__all__ = ["AddResult", "BestRef", "CacheError", "DuplicateReferenceError", "InitResult",
           "LocalCache", "RemovedFile", "RuleEntry", "SlotTakenError", "VerifyReport",
           "default_cache_path"]


@dataclass(frozen=True)
class BestRef:
    """Which reference applies, under which context, and why: the one answer type.

    Attributes
    ----------
    context : str
        The pmap that chose it (``"N/A"`` for a user override).
    reference : str or None
        The reference basename (for an override, the user file's name); None when no
        rule applies.
    path : Path or None
        Where the file is.
    reason : str
        Why nothing was found (crds's words), else empty.
    origin : str
        ``"crds"`` (chosen by the cache's rules) or ``"user"`` (an override).
    """

    context: str
    reference: str | None
    path: Path | None
    reason: str = ""
    origin: str = "crds"

    def __post_init__(self):
        if self.origin not in ("crds", "user"):
            raise ValueError(f"BestRef origin must be 'crds' or 'user', not {self.origin!r}")

    @classmethod
    def user_override(cls, path: str | os.PathLike) -> BestRef:
        """Return the answer for a reference the user named instead of asking the cache."""
        path = Path(path)
        return cls("N/A", path.name, path, origin="user")

    @property
    def found(self) -> bool:
        return self.reference is not None

    @property
    def exists(self) -> bool:
        """True when a reference applies and its file is on disk."""
        return self.path is not None and self.path.is_file()

    @property
    def keyword_value(self) -> str:
        """The value the R_DQ header keyword records (``crds://name``, ``user:name``, ``N/A``).

        A header holds printable ASCII only, so a user's file name is written with Python's
        ``unicode_escape`` (``réf.fits`` -> ``user:r\\xe9f.fits``): ASCII names are
        unchanged, and any name can be read back unambiguously. crds names are ASCII.
        """
        if not self.found:
            return "N/A"
        if self.origin == "user":
            return f"user:{self.reference.encode('unicode_escape').decode('ascii')}"
        return f"crds://{self.reference}"


@dataclass(frozen=True)
class RuleEntry:
    """One rule of a context: which reference a (detector, subarray, useafter) selects."""

    instrument: str
    detector: str
    subarray: str
    useafter: str
    reference: str


@dataclass(frozen=True)
class AddResult:
    """What ``add`` published: the reference's cache path and the new mappings."""

    reference: Path
    rmap: str
    imap: str
    context: str
    previous_context: str


@dataclass(frozen=True)
class InitResult:
    """What `LocalCache.initialise` did.

    Attributes
    ----------
    context : str
        The current context afterwards.
    action : str
        ``"created"`` (the initial mapping set), ``"existing"`` (nothing to do: nothing
        was written) or ``"recovered"`` (the server_config was missing or unusable and
        was rewritten to name the newest context that loads; ``message`` says so).
    message : str
        One line for the user when something other than the usual happened.
    """

    context: str
    action: str
    message: str = ""


@dataclass(frozen=True)
class VerifyReport:
    """Every finding of `LocalCache.verify_report`.

    Attributes
    ----------
    context : str or None
        The current context, when it loads.
    problems : list of str
        One line each: a mapping crds cannot load or certify, a current context that
        does not load, a reference missing or invalid. Any problem fails verify.
    warnings : list of str
        One line each: temporary files left by an interrupted write (``dqref cache
        clean`` removes them); they waste space but change no answer.
    """

    context: str | None
    problems: list[str]
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class RemovedFile:
    """A temporary file `LocalCache.clean` removed, with its size in bytes."""

    path: Path
    size: int


def default_cache_path() -> Path:
    """Return ``$CRDS_PATH`` if set, else ``~/crds_cache``."""
    return Path(os.environ.get("CRDS_PATH") or Path.home() / "crds_cache")


class LocalCache:
    """A local CRDS cache rooted at ``path`` (default: `default_cache_path`).

    Parameters
    ----------
    path : path-like, optional
        The cache root; ``--crds-path``, else ``$CRDS_PATH``, else ``~/crds_cache``.
    on_publish_step : callable, optional
        Called with each of `PUBLISH_STEPS` as `add` finishes writing it (before the
        current context moves). Tests pass one that kills the process there.
    """

    def __init__(self, path: str | os.PathLike | None = None,
                 on_publish_step: Callable[[str], None] | None = None):
        self.root = Path(path).expanduser().resolve() if path else default_cache_path().resolve()
        self.mapping_dir = self.root / "mappings" / OBSERVATORY
        self.config_dir = self.root / "config" / OBSERVATORY
        self._on_publish_step = on_publish_step
        self._contexts: dict[str, object] = {}
        #: The mapping folder as it was just before crds loaded each memoised context.
        self._loaded_from: dict[str, rules_index.Snapshot] = {}

    # -- layout ---------------------------------------------------------------------
    def reference_dir(self, instrument: str) -> Path:
        return self.root / "references" / OBSERVATORY / instrument.lower()

    def reference_path(self, name: str) -> Path:
        """Return the cache path of reference ``name``; refuse names that could escape.

        A name is valid when crds's ``ligeriri`` naming rules say which instrument (and
        filekind) it is: ``iris_dq_0001.fits``, and the team's ``IRIS_DQ.fits``, both are.
        The name is a plain file name, so the path is in the instrument's folder; that
        folder may be a link elsewhere for reading (`store_reference` refuses to write
        through one).
        """
        if not isinstance(name, str) or not name or os.path.basename(name) != name \
                or name.startswith("."):
            raise CacheError(f"{name!r} is not a valid reference name for this cache")
        try:
            instrument, _ = crds_adapter.file_properties(name)
        except ValueError:
            raise CacheError(f"{name!r} is not a valid reference name for this cache") from None
        if instrument not in INSTRUMENTS:
            raise CacheError(f"{name!r} is not a valid reference name for this cache")
        return self.reference_dir(instrument) / name

    def writable_folders(self) -> list[Path]:
        """Return the folders the cache writes into, each checked to resolve inside the root.

        Raises
        ------
        OutsideCacheError
            A folder (or one on the way to it) is a link to a place outside the cache.
        """
        folders = [self.mapping_dir, self.config_dir,
                   *(self.reference_dir(instrument) for instrument in INSTRUMENTS)]
        return [filesystem.inside(self.root, folder) for folder in folders]

    @property
    def _server_config(self) -> Path:
        return self.config_dir / "server_config"

    @property
    def _lock_file(self) -> Path:
        return self.config_dir / "dqref.lock"

    @property
    def is_initialised(self) -> bool:
        return self._server_config.is_file()

    # -- init -----------------------------------------------------------------------
    def init(self) -> str:
        """Create the cache with the project's initial mapping set (idempotent).

        See `initialise`, which also says what it did.

        Returns
        -------
        str
            The current context.
        """
        return self.initialise().context

    def initialise(self) -> InitResult:
        """Create the cache, or leave an initialised one alone; never roll one back.

        * An initialised cache (its server_config names a pmap that exists) is left as
          it is: nothing is written, not even the lock, so a read-only cache is fine.
        * An empty folder (or one holding only part of the initial mapping set, from an
          interrupted init) gets the initial mapping set, ``ligeriri_0001.pmap``.
        * A folder that already holds other mappings, but whose server_config is missing
          or unusable, is recovered: the newest pmap (highest serial) that crds loads
          becomes current, and ``message`` says so. If none loads, nothing is written.

        Raises
        ------
        CacheError
            Mappings are present and no pmap among them loads; or a folder links outside
            the cache (`OutsideCacheError`); or the disk refuses a write
            (`CacheWriteError`).
        """
        if self._usable_context_problem() is None:
            return InitResult(self.current_context, "existing")
        for folder in self.writable_folders():
            with filesystem.writing(folder):
                folder.mkdir(parents=True, exist_ok=True)
        with self._lock():
            problem = self._usable_context_problem()
            if problem is None:  # another process initialised it meanwhile
                return InitResult(self.current_context, "existing")
            if self._holds_foreign_mappings():
                return self._recover(problem)
            return self._create()

    def _create(self) -> InitResult:
        import rmaps

        initial = sorted(p for p in rmaps.INITIAL.iterdir() if p.name.endswith("map"))
        for source in initial:
            target = self.mapping_dir / source.name
            if not target.exists():
                self._publish(target, source.read_text())
        pmap = next(p.name for p in initial if p.name.endswith(".pmap"))
        self.context(pmap)
        self._write_config_files()
        self._set_current_context(pmap)
        return InitResult(pmap, "created")

    def _usable_context_problem(self) -> str | None:
        """Why the server_config names no usable context (``"missing"``, ...), or None."""
        if not self.is_initialised:
            return "missing"
        try:
            name = self.current_context
        except CacheError as error:
            return f"unusable ({_one_line(error)})"
        if not (self.mapping_dir / name).is_file():
            return f"unusable (it names {name}, which is not in {self.mapping_dir})"
        return None

    def _holds_foreign_mappings(self) -> bool:
        """True when the mapping folder holds anything but (part of) the initial set."""
        import rmaps

        for path in self._mapping_files():
            shipped = rmaps.INITIAL.joinpath(path.name)
            if not shipped.is_file() or shipped.read_bytes() != path.read_bytes():
                return True
        return False

    def _recover(self, problem: str) -> InitResult:
        found = self._mapping_files()
        pmaps = sorted((p.name for p in found if p.suffix == ".pmap"), key=_serial,
                       reverse=True)
        skipped = []
        for name in pmaps:
            try:
                self.context(name)
            except CacheError as error:
                skipped.append(f"{name} does not load ({_one_line(error)})")
                continue
            self._write_config_files()
            self._set_current_context(name)
            message = (f"{self._server_config} was {problem}; recovered the newest loadable "
                       f"context {name} (of {len(pmaps)} pmaps in {self.mapping_dir})")
            return InitResult(name, "recovered", "; ".join([message, *skipped]))
        raise CacheError(
            f"{self.mapping_dir} holds {len(found)} mappings ({len(pmaps)} pmaps) but no pmap "
            f"crds can load; refusing to initialise over them"
            + (f" ({skipped[0]})" if skipped else ""))

    def use_context(self, pmap: str) -> None:
        """Make ``pmap`` (in the mapping folder) current; write crds's config files.

        The context must load with crds (checksums verified) or nothing changes.
        """
        self.writable_folders()
        with self._lock():
            self.context(pmap)
            self._write_config_files()
            self._set_current_context(pmap)

    # -- reading --------------------------------------------------------------------
    @property
    def current_context(self) -> str:
        """The pmap that lookups use unless told otherwise.

        Raises
        ------
        CacheError
            Not initialised, or the server_config cannot be read, is not crds's format, or
            names something other than a pmap (an imap, an rmap, a path).
        """
        if not self.is_initialised:
            raise CacheError(f"{self.root} is not an initialised cache; run 'dqref cache init "
                             f"--crds-path {self.root}'")
        try:
            name = crds_adapter.operational_context(self.config_dir)
        except ValueError as error:
            raise CacheError(f"{self._server_config}: corrupted ({error})") from None
        except OSError as error:
            raise CacheError(f"{self._server_config}: cannot be read "
                             f"({error.strerror or error})") from None
        if not _PMAP_NAME.fullmatch(name):
            raise CacheError(f"{self._server_config}: operational_context {name!r} is not a "
                             ".pmap name")
        return name

    def context(self, name: str | None = None):
        """Return the loaded crds pipeline context ``name`` (default: current), memoised."""
        name = self._context_name(name)
        if name not in self._contexts:
            if not (self.mapping_dir / name).is_file():
                raise CacheError(f"context {name} does not exist in {self.mapping_dir}")
            before = rules_index.snapshot(self.mapping_dir)
            try:
                self._contexts[name] = crds_adapter.load_context(self.mapping_dir, name)
                self._loaded_from[name] = before
            except (crds_adapter.MappingError, crds_adapter.ChecksumError,
                    FileNotFoundError) as error:
                raise CacheError(f"cannot load context {name}: {_one_line(error)}") from None
        return self._contexts[name]

    def bestref(self, header, context: str | None = None, strict: bool = False) -> BestRef:
        """Return the dq reference that CRDS rules select for ``header``.

        Parameters
        ----------
        header : mapping
            FITS keywords (INSTRUME, DETECTOR, SUBARRAY, DATE-OBS, TIME-OBS) and/or
            stpipe-style keys (META.INSTRUMENT.NAME, ...). A missing SUBARRAY means FULL.
        context : str, optional
            A pmap name; default the current context.
        strict : bool
            Refuse a detector the detector table does not know (a typo) instead of
            answering N/A. ``dqref cache bestref`` is strict; the DQ step is not (a ramp
            from a detector without references is SKIPPED).

        Returns
        -------
        BestRef
            ``reference`` None (with crds's reason) when no rule applies.

        Raises
        ------
        UnknownDetectorError
            No instrument, or one the detector table does not know (crds could not answer
            at all); with ``strict``, also an unknown detector. The message names the
            known ones.
        """
        header = dict(header)
        _check_names(header, strict)
        context_name = context or self.current_context
        pipeline = self.context(context_name)
        if not any(k.upper() in ("SUBARRAY", "META.SUBARRAY.NAME") for k in header):
            header["SUBARRAY"] = "FULL"
        answer = crds_adapter.best_reference(pipeline, header)
        if answer.upper().startswith("NOT FOUND"):
            reason = answer[len("NOT FOUND"):].strip() or "no matching rule"
            return BestRef(context_name, None, None, reason)
        return BestRef(context_name, answer, self.reference_path(answer))

    def bestref_for_file(self, dataset: str | os.PathLike, context: str | None = None,
                         strict: bool = False) -> BestRef:
        """Return the best reference for a FITS dataset, from its primary header.

        Raises
        ------
        NotARegularFileError
            ``dataset`` is missing, or a FIFO, a device or a folder (never opened).
        """
        from astropy.io import fits

        dataset = filesystem.regular_file(dataset)
        try:
            header = fits.getheader(dataset)
        except (OSError, ValueError) as error:
            raise CacheError(f"{dataset}: cannot read its FITS header ({error})") from None
        return self.bestref({k: v for k, v in header.items() if k}, context=context,
                            strict=strict)

    def _context_name(self, name: str | None) -> str:
        """Return ``name``, a checked pmap name, or the current context when None."""
        if name is None:
            return self.current_context
        if not isinstance(name, str) or not _PMAP_NAME.fullmatch(name):
            raise CacheError(f"context {name!r} is not a .pmap name")
        return name

    def rules(self, context: str | None = None) -> list[RuleEntry]:
        """Return every rule of a context (default: current), instrument by instrument.

        crds computes them. Its answer is kept in the cache's rules index
        (`dqref.cache.rules_index`), which later calls read, without crds, for as long as
        every mapping file the context names keeps its bytes; after any change crds
        answers again (or raises, as it would have without the index).

        Raises
        ------
        CacheError
            No such context, or it does not load with crds.
        """
        name = self._context_name(context)
        known = rules_index.read(self.root, self.mapping_dir, name, _index_versions())
        if known is not None:
            return [RuleEntry(**rule) for rule in known]
        entries = self._rules_from_crds(self.context(name))
        self._remember_rules(name, entries)
        return entries

    def _rules_from_crds(self, pipeline) -> list[RuleEntry]:
        entries = []
        for instrument in INSTRUMENTS:
            try:
                selections = crds_adapter.rmap_selections(pipeline, instrument)
            except Exception:  # noqa: BLE001 - an instrument with dq = N/A has no rmap
                continue
            for (detector, subarray), useafters in sorted(selections.items()):
                for useafter, reference in sorted(useafters.items()):
                    date = useafter[0] if isinstance(useafter, tuple) else useafter
                    entries.append(RuleEntry(instrument.upper(), detector, subarray, date,
                                             reference))
        return entries

    def _remember_rules(self, name: str, entries: Sequence[RuleEntry] | None = None) -> None:
        """Write crds's rules of loaded context ``name`` into the rules index (best effort)."""
        pipeline = self.context(name)
        if entries is None:
            entries = self._rules_from_crds(pipeline)
        rules_index.write(self.root, self.mapping_dir, name,
                          crds_adapter.mapping_names(pipeline),
                          [asdict(entry) for entry in entries], _index_versions(),
                          self._loaded_from.get(name, {}))

    def references(self) -> list[Path]:
        """Return every reference file on disk."""
        return sorted(p for i in INSTRUMENTS for p in self.reference_dir(i).glob("*")
                      if p.is_file() and not p.name.startswith("."))

    def contexts(self) -> list[str]:
        """Return every pmap in the cache, oldest first."""
        return sorted(p.name for p in self.mapping_dir.glob(f"{OBSERVATORY}_*.pmap"))

    def current_reference_for(self, model: DQModel) -> Path:
        """Return the reference the current context selects for a reference's own slot."""
        from dqref.cache import mappings

        header = {"INSTRUME": model.meta.name, "DETECTOR": model.meta.detector,
                  "SUBARRAY": model.meta.subarray.name or "FULL"}
        date, time = mappings.rmap_useafter(model.meta.useafter).split()
        header.update({"DATE-OBS": date, "TIME-OBS": time})
        answer = self.bestref(header)
        if not answer.found:
            raise CacheError(f"the current context {answer.context} selects no reference for "
                             f"{model.meta.name} {model.meta.detector} at {model.meta.useafter} "
                             f"({answer.reason})")
        return answer.path

    # -- writing --------------------------------------------------------------------
    def add(self, reference: str | os.PathLike, replace: bool = False,
            checks: Sequence[Callable] = ()) -> AddResult:
        """Register a reference: copy it in, write new rmap/imap/pmap versions, switch.

        Parameters
        ----------
        reference : path-like
            A DQ reference file; it must validate (errors refuse it).
        replace : bool
            Allow a new rule version for an occupied (detector, subarray, useafter) slot.
            Nothing is deleted: earlier contexts still select the earlier reference.
        checks : sequence of callables
            More checks, each ``check(model, path) -> list[Finding]``, run before anything
            is written; any error finding refuses the reference. `dqref cache add` passes
            `crds_adapter.reference_checks` (the DQ step's round trip) unless told not to.

        Returns
        -------
        AddResult

        Raises
        ------
        InvalidReferenceError, DuplicateReferenceError, SlotTakenError, CacheError
            `CacheError` includes `OutsideCacheError` (a folder links outside the cache:
            nothing is written), `CacheWriteError` (the disk refused: the current context
            is unchanged) and `CacheLockError`.
        """
        from dqref.cache import mappings
        from dqref.model import DQModel
        from dqref.validation import errors as error_findings

        source = filesystem.regular_file(reference)
        model = DQModel.read(source)
        problems = error_findings(model.validate())
        if problems:
            raise InvalidReferenceError(problems, source=str(source))
        for check in checks:
            refused = error_findings(check(model, source))
            if refused:
                raise InvalidReferenceError(refused, source=str(source))
        instrument = model.meta.name.lower()
        subarray = model.meta.subarray.name.upper()
        slot = (canonical_detector(model.meta.name, model.meta.detector),
                mappings.ANY_SUBARRAY if subarray == "FULL" else subarray)
        useafter = mappings.rmap_useafter(model.meta.useafter)
        self.writable_folders()
        with self._lock():
            previous = self.current_context
            pipeline = self.context(previous)
            self._refuse_duplicate(source, pipeline)
            rules = self._rules_of(pipeline, instrument)
            taken = rules.get(slot, {}).get(useafter)
            if taken and not replace:
                raise SlotTakenError(
                    f"{taken} already serves {model.meta.name} {slot[0]} subarray "
                    f"{subarray} from {useafter}; use --replace to supersede it")
            serial = next_free_serial(f"{instrument}_dq", "fits", [
                self.reference_dir(instrument), self.reference_dir(instrument).parent],
                self.mapping_dir)
            target = self.store_reference(source, f"{instrument}_dq_{serial:04d}.fits")
            self._step_done("reference")
            rules.setdefault(slot, {})[useafter] = target.name
            result = self._publish_mappings(pipeline, previous, instrument, rules, target)
            self._set_current_context(result.context)
        return result

    def _publish_mappings(self, pipeline, previous: str, instrument: str,
                          rules: dict, reference: Path) -> AddResult:
        from dqref import __version__
        from dqref.cache import mappings

        derived = f"generated by dqref {__version__} from {previous}"
        rmap_name = self._next_mapping_name(f"{OBSERVATORY}_{instrument}_dq", "rmap")
        match_rules = [mappings.MatchRule(detector, subarray, tuple(
            mappings.UseAfterEntry(date, ref) for date, ref in sorted(dates.items())))
            for (detector, subarray), dates in rules.items()]
        self.publish_mapping(rmap_name, mappings.render_rmap(
            rmap_name, instrument.upper(), match_rules, derived))
        self._step_done("rmap")
        imap_name = self._next_mapping_name(f"{OBSERVATORY}_{instrument}", "imap")
        others = crds_adapter.imap_selections(pipeline, instrument)
        self.publish_mapping(imap_name, mappings.render_imap(
            imap_name, instrument.upper(), rmap_name, derived, others=others))
        self._step_done("imap")
        imaps = crds_adapter.imap_names(pipeline)
        imaps[instrument.upper()] = imap_name
        pmap_name = self._next_mapping_name(OBSERVATORY, "pmap")
        self.publish_mapping(pmap_name, mappings.render_pmap(pmap_name, imaps, derived))
        self._step_done("pmap")
        self.context(pmap_name)  # the whole new context loads with crds before we switch
        return AddResult(reference, rmap_name, imap_name, pmap_name, previous)

    def store_reference(self, source: str | os.PathLike, name: str) -> Path:
        """Copy ``source`` into the cache as reference ``name`` (atomic, never overwriting).

        Raises
        ------
        FileExistsRefusedError, OutsideCacheError, CacheWriteError
        """
        target = filesystem.inside(self.root, self.reference_path(name))
        with filesystem.writing(target), atomic_output(target) as temporary:
            shutil.copyfile(source, temporary)
        return target

    def publish_mapping(self, name: str, text: str) -> Path:
        """Prove mapping ``text`` with crds, then publish it as ``name`` (never overwriting).

        Raises
        ------
        MappingLoadError, FileExistsRefusedError, OutsideCacheError, CacheWriteError
        """
        from dqref.cache import mappings

        mappings.prove(text, name)
        return self._publish(self.mapping_dir / name, text)

    def _next_mapping_name(self, stem: str, extension: str) -> str:
        serial = next_free_serial(stem, extension, [self.mapping_dir], self.mapping_dir)
        return f"{stem}_{serial:04d}.{extension}"

    def _publish(self, path: Path, text: str, overwrite: bool = False) -> Path:
        """Write ``text`` atomically to ``path`` inside the cache (one-line errors)."""
        filesystem.inside(self.root, path)
        with filesystem.writing(path):
            return publish_text(path, text, overwrite=overwrite)

    def _step_done(self, step: str) -> None:
        if self._on_publish_step is not None:
            self._on_publish_step(step)

    def _write_config_files(self) -> None:
        for name, text in crds_adapter.config_files().items():
            self._publish(self.config_dir / name, text, overwrite=True)

    def _set_current_context(self, pmap: str) -> None:
        from dqref import __version__

        text = crds_adapter.server_config_text(pmap, self.contexts(),
                                               "local cache managed by dqref " + __version__)
        self._publish(self._server_config, text, overwrite=True)
        self._remember_rules(pmap)  # it was just loaded: crds's answer costs nothing more

    def _rules_of(self, pipeline, instrument: str) -> dict:
        try:
            selections = crds_adapter.rmap_selections(pipeline, instrument)
        except Exception:  # noqa: BLE001 - dq is N/A for this instrument: no rules yet
            return {}
        return {key: {(d[0] if isinstance(d, tuple) else d): ref for d, ref in dates.items()}
                for key, dates in selections.items()}

    def _refuse_duplicate(self, source: Path, pipeline) -> None:
        """Refuse content already registered in ``pipeline``.

        Only references a context names count: an orphan left by an interrupted add is
        not registered, so retrying the same file succeeds. FITS checksums are sums, blind
        to a flag moved between pixels, so they only pre-select candidates; a byte hash
        decides.
        """
        checksums = _checksum_cards(source)
        for name in crds_adapter.reference_names(pipeline):
            existing = self.reference_path(name)
            if existing.is_file() and _checksum_cards(existing) == checksums and \
                    _content_hash(existing) == _content_hash(source):
                raise DuplicateReferenceError(
                    f"{source}: the same content is already registered as {name}")

    @contextlib.contextmanager
    def _lock(self, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the cache lock (``config/ligeriri/dqref.lock``) for the block.

        The lock is never followed through a link (it could point anywhere), and every
        way of failing to take it is one `CacheLockError` line naming the lock file.
        """
        from filelock import FileLock, Timeout  # only writers lock: list never pays for it

        lock_file = self._lock_file
        filesystem.inside(self.root, self.config_dir)
        if lock_file.is_symlink():
            raise CacheLockError(f"{lock_file}: the cache lock is a symbolic link; refusing to "
                                 "follow it (remove it when no dqref process is running)")
        with filesystem.writing(self.config_dir):
            self.config_dir.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_file), timeout=timeout)
        try:
            lock.acquire()
        except Timeout:
            raise CacheLockError(f"another dqref process holds the cache lock {lock_file}; "
                                 "try again when it has finished") from None
        except OSError as error:
            raise CacheLockError(f"cannot take the cache lock {lock_file}: "
                                 f"{error.strerror or error}") from None
        try:
            yield
        finally:
            lock.release()

    def _mapping_files(self) -> list[Path]:
        if not self.mapping_dir.is_dir():
            return []
        return sorted(p for p in self.mapping_dir.glob("*.?map") if p.is_file())

    # -- checking -------------------------------------------------------------------
    def verify(self, progress=None) -> list[str]:
        """Check the whole cache; return one line per problem (empty when healthy).

        See `verify_report`, which also lists warnings.
        """
        return self.verify_report(progress).problems

    def verify_report(self, progress=None) -> VerifyReport:
        """Check the whole cache; collect every problem and warning before reporting.

        Every mapping file is UTF-8, parses with a correct checksum, and passes crds's own
        certify (its findings, such as an impossible UseAfter date, are problems); the
        current context is a pmap that loads; every reference it names exists and
        validates. Temporary files left by an interrupted write are warnings.

        Parameters
        ----------
        progress : callable, optional
            ``progress(items, description)`` yielding ``items`` (a progress bar).
        """
        from dqref.cache import mappings
        from dqref.model import DQModel
        from dqref.validation import errors as error_findings

        def shown(items, description):
            return progress(items, description) if progress else items

        problems: list[str] = []
        # crds logs what it dislikes while loading; certify below reports it, once
        with crds_adapter.captured_crds_errors():
            try:
                pipeline, context_problem = self.context(), None
            except CacheError as error:
                pipeline, context_problem = None, str(error)
            loadable = []
            for path in self._mapping_files():
                try:
                    text = crds_adapter.read_mapping_text(path)
                except crds_adapter.MappingError as error:
                    problems.append(_one_line(error))
                    continue
                try:
                    mappings.prove(text, path.name)
                except DQRefError as error:
                    problems.append(f"{path}: {_one_line(error)}")
                    continue
                loadable.append(path)
            comparison = pipeline.basename if pipeline is not None else \
                self._newest_loadable_context(loadable)
        if comparison is not None:  # crds certify needs a context to compare with
            certified = crds_adapter.certify_mappings(
                self.root, shown(loadable, "certifying mappings"), comparison)
            for path, errors in certified.items():
                problems.extend(f"{path}: crds certify: {error}" for error in errors)
        warnings = [f"{path}: temporary file left by an interrupted write "
                    f"({path.lstat().st_size} bytes); 'dqref cache clean' removes it"
                    for path in self.leftovers()]
        if pipeline is None:
            return VerifyReport(None, problems + [context_problem], warnings)
        names = crds_adapter.reference_names(pipeline)
        for name in shown(names, "verifying references"):
            try:
                path = self.reference_path(name)
            except CacheError as error:
                problems.append(f"{pipeline.basename}: {error}")
                continue
            if not path.is_file():
                problems.append(f"{path}: named by {pipeline.basename} but missing")
                continue
            if crds_adapter.file_properties(name)[1] != crds_adapter.REFTYPE:
                continue  # dqref validates dq references only; others are the team's
            try:
                findings = error_findings(DQModel.read(path).validate())
            except DQRefError as error:
                problems.append(_one_line(error))
                continue
            problems.extend(f.format(str(path)) for f in findings)
        return VerifyReport(pipeline.basename, problems, warnings)

    def _newest_loadable_context(self, candidates: Sequence[Path]) -> str | None:
        for name in sorted((p.name for p in candidates if p.suffix == ".pmap"), key=_serial,
                           reverse=True):
            try:
                self.context(name)
            except CacheError:
                continue
            return name
        return None

    # -- maintenance ----------------------------------------------------------------
    def leftovers(self) -> list[Path]:
        """Return the temporary files that interrupted writes left in the cache's folders."""
        references = self.root / "references" / OBSERVATORY
        folders = [self.mapping_dir, self.config_dir, references,
                   self.root / rules_index.FOLDER]
        if references.is_dir():
            folders += sorted(p for p in references.iterdir()
                              if p.is_dir() and not p.is_symlink())
        return filesystem.leftover_temporaries(folders)

    def clean(self) -> list[RemovedFile]:
        """Remove the temporary files interrupted writes left (`leftovers`); return them.

        Only files with `dqref.atomic`'s temporary-name pattern, only regular files (never
        a link or a folder so named), only in the cache's folders, and only while holding
        the cache lock, so no add is writing. Removing a temporary name never removes a
        published file: at worst it is a second link to one, and the published name stays.

        Raises
        ------
        CacheLockError
            Another process holds the cache lock (nothing is removed).
        OutsideCacheError
            A folder holding leftovers links outside the cache (nothing is removed).
        """
        with self._lock(timeout=0):
            found = self.leftovers()
            for path in found:
                filesystem.inside(self.root, path.parent)
            removed = []
            for path in found:
                size = path.lstat().st_size
                with filesystem.writing(path):
                    path.unlink()
                removed.append(RemovedFile(path, size))
        return removed


def _index_versions() -> dict[str, str]:
    """What an index must have been written under to be read (`rules_index.read`)."""
    from dqref.version import version

    return {"dqref_version": version(), "crds_version": crds_adapter.crds_version()}


def _check_names(header: dict, strict: bool) -> None:
    """Refuse a header without a known instrument; with ``strict``, an unknown detector."""
    values = {str(key).upper(): value for key, value in header.items()}
    instrument = next((values[k] for k in _INSTRUMENT_KEYS if values.get(k) is not None), None)
    if instrument is None:
        raise UnknownDetectorError(
            f"the header names no instrument ({' or '.join(_INSTRUMENT_KEYS)}); {TABLE_FILE} "
            f"lists {', '.join(instruments())}")
    if canonical_instrument(instrument) not in instruments():
        get_detector(instrument, "")  # raises, naming the known instruments
    detector = next((values[k] for k in _DETECTOR_KEYS if values.get(k) is not None), None)
    if strict and detector is not None:
        get_detector(instrument, detector)  # raises, naming the instrument's detectors


def _serial(name: str) -> int:
    match = re.search(r"_(\d{4,})\.[pir]map$", name)
    return int(match.group(1)) if match else -1


def _checksum_cards(path: Path) -> list:
    """Return each HDU's (CHECKSUM, DATASUM) cards: a cheap, header-only pre-filter."""
    from astropy.io import fits

    try:
        with fits.open(path) as hdulist:
            return [(h.header.get("CHECKSUM"), h.header.get("DATASUM")) for h in hdulist]
    except (OSError, ValueError):
        return []


def _content_hash(path: Path) -> str:
    """Return the sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
