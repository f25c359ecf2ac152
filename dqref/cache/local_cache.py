"""A local CRDS cache for IRIS and Liger: initialise, register references, look them up.

Layout (as crds expects it for the ``ligeriri`` observatory)::

    <root>/mappings/ligeriri/ligeriri_0002.pmap, ligeriri_iris_0002.imap,
                             ligeriri_iris_dq_0001.rmap, ...
    <root>/references/ligeriri/iris/iris_dq_0001.fits
    <root>/config/ligeriri/server_config      the current context (crds's own format)
    <root>/config/ligeriri/ref_cache_subdir_mode   "instrument" (read by crds)

Publishing is crash-safe: every file is written under a temporary name and linked into
place (never overwriting), and the current-context pointer is replaced last, so a crash
at any point leaves the cache at its previous context (``tests/test_cache_safety.py``
kills real processes through the ``on_publish_step`` hook). Concurrent writers are serialised
by a file lock. Mappings are immutable once published, so loaded contexts are memoised.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits
from filelock import FileLock

from dqref import __version__
from dqref.atomic import atomic_output, publish_text
from dqref.cache import crds_adapter, mappings
from dqref.detectors import canonical_detector
from dqref.errors import DQRefError, InvalidReferenceError
from dqref.model import DQModel
from dqref.validation import errors as error_findings

OBSERVATORY = crds_adapter.OBSERVATORY
INSTRUMENTS = ("iris", "liger")
#: The steps of `LocalCache.add`, in order, after each of which ``on_publish_step`` is called.
PUBLISH_STEPS = ("reference", "rmap", "imap", "pmap")


class CacheError(DQRefError):
    """The cache is missing, corrupted, or refused an operation."""


class DuplicateReferenceError(CacheError):
    """The same reference content is already registered."""


class SlotTakenError(CacheError):
    """A reference already occupies this (detector, subarray, useafter) slot."""


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
    def keyword_value(self) -> str:
        """The value the R_DQ header keyword records (``crds://name``, ``user:name``, ``N/A``)."""
        if not self.found:
            return "N/A"
        return f"user:{self.reference}" if self.origin == "user" else f"crds://{self.reference}"


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


def default_cache_path() -> Path:
    """Return ``$CRDS_PATH`` if set, else ``~/crds_cache``."""
    return Path(os.environ.get("CRDS_PATH") or Path.home() / "crds_cache")


class LocalCache:
    """A local CRDS cache rooted at ``path`` (default: `default_cache_path`).

    Parameters
    ----------
    path : path-like, optional
        The cache root; ``--path``, else ``$CRDS_PATH``, else ``~/crds_cache``.
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

    # -- layout ---------------------------------------------------------------------
    def reference_dir(self, instrument: str) -> Path:
        return self.root / "references" / OBSERVATORY / instrument.lower()

    def reference_path(self, name: str) -> Path:
        """Return the cache path of reference ``name``; refuse names that could escape.

        A name is valid when crds's ``ligeriri`` naming rules say which instrument (and
        filekind) it is: ``iris_dq_0001.fits``, and the team's ``IRIS_DQ.fits``, both are.
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
        path = self.reference_dir(instrument) / name
        if self.root not in path.resolve().parents:
            raise CacheError(f"reference {name!r} resolves outside the cache {self.root}")
        return path

    @property
    def _server_config(self) -> Path:
        return self.config_dir / "server_config"

    @property
    def is_initialised(self) -> bool:
        return self._server_config.is_file()

    # -- init -----------------------------------------------------------------------
    def init(self) -> str:
        """Create the cache with the project's initial mapping set (idempotent).

        Returns
        -------
        str
            The current context.
        """
        import rmaps

        self.mapping_dir.mkdir(parents=True, exist_ok=True)
        self.config_dir.mkdir(parents=True, exist_ok=True)
        for instrument in INSTRUMENTS:
            self.reference_dir(instrument).mkdir(parents=True, exist_ok=True)
        with self._lock():
            if self.is_initialised:
                return self.current_context
            initial = sorted(p for p in rmaps.INITIAL.iterdir() if p.name.endswith("map"))
            for source in initial:
                target = self.mapping_dir / source.name
                if not target.exists():
                    publish_text(target, source.read_text())
            pmap = next(p.name for p in initial if p.name.endswith(".pmap"))
            crds_adapter.load_context(self.mapping_dir, pmap)
            self._write_config_files()
            self._set_current_context(pmap)
        return pmap

    def use_context(self, pmap: str) -> None:
        """Make ``pmap`` (in the mapping folder) current; write crds's config files.

        The context must load with crds (checksums verified) or nothing changes.
        """
        with self._lock():
            self.context(pmap)
            self._write_config_files()
            self._set_current_context(pmap)

    # -- reading --------------------------------------------------------------------
    @property
    def current_context(self) -> str:
        """The pmap that lookups use unless told otherwise."""
        if not self.is_initialised:
            raise CacheError(f"{self.root} is not an initialised cache; run 'dqref cache init "
                             f"--path {self.root}'")
        try:
            return crds_adapter.operational_context(self.config_dir)
        except ValueError as error:
            raise CacheError(f"{self._server_config}: corrupted ({error})") from None

    def context(self, name: str | None = None):
        """Return the loaded crds pipeline context ``name`` (default: current), memoised."""
        name = name or self.current_context
        if name not in self._contexts:
            if not (self.mapping_dir / name).is_file():
                raise CacheError(f"context {name} does not exist in {self.mapping_dir}")
            try:
                self._contexts[name] = crds_adapter.load_context(self.mapping_dir, name)
            except (crds_adapter.MappingError, crds_adapter.ChecksumError,
                    FileNotFoundError) as error:
                raise CacheError(f"cannot load context {name}: {_one_line(error)}") from None
        return self._contexts[name]

    def bestref(self, header, context: str | None = None) -> BestRef:
        """Return the dq reference that CRDS rules select for ``header``.

        Parameters
        ----------
        header : mapping
            FITS keywords (INSTRUME, DETECTOR, SUBARRAY, DATE-OBS, TIME-OBS) and/or
            stpipe-style keys (META.INSTRUMENT.NAME, ...). A missing SUBARRAY means FULL.
        context : str, optional
            A pmap name; default the current context.

        Returns
        -------
        BestRef
            ``reference`` None (with crds's reason) when no rule applies.
        """
        context_name = context or self.current_context
        pipeline = self.context(context_name)
        header = dict(header)
        if not any(k.upper() in ("SUBARRAY", "META.SUBARRAY.NAME") for k in header):
            header["SUBARRAY"] = "FULL"
        answer = crds_adapter.best_reference(pipeline, header)
        if answer.upper().startswith("NOT FOUND"):
            reason = answer[len("NOT FOUND"):].strip() or "no matching rule"
            return BestRef(context_name, None, None, reason)
        return BestRef(context_name, answer, self.reference_path(answer))

    def bestref_for_file(self, dataset: str | os.PathLike, context: str | None = None) -> BestRef:
        """Return the best reference for a FITS dataset, from its primary header."""
        try:
            header = fits.getheader(dataset)
        except (OSError, ValueError) as error:
            raise CacheError(f"{dataset}: cannot read its FITS header ({error})") from None
        return self.bestref({k: v for k, v in header.items() if k}, context=context)

    def rules(self, context: str | None = None) -> list[RuleEntry]:
        """Return every rule of a context, instrument by instrument."""
        pipeline = self.context(context)
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

    def references(self) -> list[Path]:
        """Return every reference file on disk."""
        return sorted(p for i in INSTRUMENTS for p in self.reference_dir(i).glob("*")
                      if p.is_file() and not p.name.startswith("."))

    def contexts(self) -> list[str]:
        """Return every pmap in the cache, oldest first."""
        return sorted(p.name for p in self.mapping_dir.glob(f"{OBSERVATORY}_*.pmap"))

    def current_reference_for(self, model: DQModel) -> Path:
        """Return the reference the current context selects for a reference's own slot."""
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
        """
        source = Path(reference)
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
            serial = self._next_serial(self.reference_dir(instrument),
                                       rf"{instrument}_dq_(\d{{4,}})\.fits")
            name = f"{instrument}_dq_{serial:04d}.fits"
            target = self.reference_path(name)
            with atomic_output(target) as temporary:
                shutil.copyfile(source, temporary)
            self._step_done("reference")
            rules.setdefault(slot, {})[useafter] = name
            result = self._publish_mappings(pipeline, previous, instrument, rules, target)
            self._set_current_context(result.context)
        return result

    def _publish_mappings(self, pipeline, previous: str, instrument: str,
                          rules: dict, reference: Path) -> AddResult:
        derived = f"generated by dqref {__version__} from {previous}"
        rmap_name = self._next_mapping_name(f"{OBSERVATORY}_{instrument}_dq", "rmap")
        match_rules = [mappings.MatchRule(detector, subarray, tuple(
            mappings.UseAfterEntry(date, ref) for date, ref in sorted(dates.items())))
            for (detector, subarray), dates in rules.items()]
        self._publish_mapping(rmap_name, mappings.render_rmap(
            rmap_name, instrument.upper(), match_rules, derived))
        self._step_done("rmap")
        imap_name = self._next_mapping_name(f"{OBSERVATORY}_{instrument}", "imap")
        others = crds_adapter.imap_selections(pipeline, instrument)
        self._publish_mapping(imap_name, mappings.render_imap(
            imap_name, instrument.upper(), rmap_name, derived, others=others))
        self._step_done("imap")
        imaps = crds_adapter.imap_names(pipeline)
        imaps[instrument.upper()] = imap_name
        pmap_name = self._next_mapping_name(OBSERVATORY, "pmap")
        self._publish_mapping(pmap_name, mappings.render_pmap(pmap_name, imaps, derived))
        self._step_done("pmap")
        self.context(pmap_name)  # the whole new context loads with crds before we switch
        return AddResult(reference, rmap_name, imap_name, pmap_name, previous)

    def _next_mapping_name(self, stem: str, extension: str) -> str:
        serial = self._next_serial(self.mapping_dir, rf"{stem}_(\d{{4,}})\.{extension}")
        return f"{stem}_{serial:04d}.{extension}"

    def _publish_mapping(self, name: str, text: str) -> None:
        mappings.prove(text, name)
        publish_text(self.mapping_dir / name, text)

    def _step_done(self, step: str) -> None:
        if self._on_publish_step is not None:
            self._on_publish_step(step)

    def _write_config_files(self) -> None:
        for name, text in crds_adapter.config_files().items():
            publish_text(self.config_dir / name, text, overwrite=True)

    def _set_current_context(self, pmap: str) -> None:
        text = crds_adapter.server_config_text(pmap, self.contexts(),
                                               "local cache managed by dqref " + __version__)
        publish_text(self._server_config, text, overwrite=True)

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

    @staticmethod
    def _next_serial(folder: Path, pattern: str) -> int:
        """Return one more than the highest serial among names matching ``pattern``.

        Orphans of an interrupted run count too, so a serial is never reused.
        """
        family = re.compile(pattern)
        serials = [int(m.group(1)) for p in folder.glob("*") if (m := family.fullmatch(p.name))]
        return max(serials, default=0) + 1

    def _lock(self) -> FileLock:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.config_dir / "dqref.lock"), timeout=600)

    # -- checking -------------------------------------------------------------------
    def verify(self, progress=None) -> list[str]:
        """Check the whole cache; return one line per problem (empty when healthy).

        Every mapping parses with a correct checksum, the current context loads, and every
        reference it names exists and validates.
        """
        problems = []
        for path in sorted(self.mapping_dir.glob("*.?map")):
            try:
                mappings.prove(path.read_text(), path.name)
            except DQRefError as error:
                problems.append(f"{path}: {_one_line(error)}")
        try:
            pipeline = self.context()
        except CacheError as error:
            return problems + [str(error)]
        names = crds_adapter.reference_names(pipeline)
        for name in (progress(names, "verifying references") if progress else names):
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
        return problems


def _checksum_cards(path: Path) -> list:
    """Return each HDU's (CHECKSUM, DATASUM) cards: a cheap, header-only pre-filter."""
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
