"""Adopt a hand-made CRDS cache (like the Liger/IRIS team's): report its problems, repair it.

`inspect_cache` reads a cache folder (``mappings/ligeriri``, ``config/ligeriri``,
``references/ligeriri``) and lists every problem at once: a ``server_config`` naming no
pmap, stale sha1sums, ``ignore_checksum`` headers, a header ``name`` that is not the file's,
mappings that name mappings which do not exist, reference files that are missing.
`adopt` with ``repair=True`` then writes into a new cache folder a loadable context that
keeps every rule of the source, of every filekind: each rmap the source context reaches is
rewritten by crds under a new serial with a correct checksum; imaps and the pmap are
rendered from the same selections (a dangling name becomes ``N/A``, reported); reference
files that exist are copied. Nothing in the source folder is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from dqref import __version__
from dqref.cache import crds_adapter, filesystem, mappings
from dqref.cache.local_cache import OBSERVATORY, CacheError, LocalCache

_SERIAL = re.compile(r"_(\d{4,})\.[pir]map$")


@dataclass(frozen=True)
class AdoptReport:
    """What `adopt` found and did.

    Attributes
    ----------
    problems : list of str
        One line per problem of the source cache (missing references included).
    missing_references : list of str
        Reference names the source context selects whose files are not in the source.
    context : str or None
        The pmap written into the destination (None when nothing was written).
    written : list of str
        The mapping files written into the destination.
    """

    problems: list[str]
    missing_references: list[str] = field(default_factory=list)
    context: str | None = None
    written: list[str] = field(default_factory=list)


@dataclass
class _Source:
    root: Path
    mapping_dir: Path
    problems: list[str] = field(default_factory=list)
    headers: dict[str, dict] = field(default_factory=dict)
    selectors: dict[str, object] = field(default_factory=dict)

    def read(self, name: str):
        """Parse mapping ``name`` once (checksum not required); None if missing/unreadable."""
        if name in self.selectors:
            return self.selectors[name]
        path = self.mapping_dir / name
        if not path.is_file():
            return None
        try:
            header, selector = crds_adapter.read_mapping_leniently(path)
        except crds_adapter.MappingError as error:
            self.problems.append(f"{path}: crds cannot parse it ({_one_line(error)})")
            self.selectors[name] = None
            return None
        self.headers[name], self.selectors[name] = header, selector
        return selector


def inspect_cache(source: str | Path) -> tuple[list[str], _Source, str | None]:
    """Return (problems, parsed source, pmap to adopt) for the cache at ``source``."""
    root = Path(source).expanduser().resolve()
    found = _Source(root, root / "mappings" / OBSERVATORY)
    if not found.mapping_dir.is_dir():
        raise CacheError(f"{root}: no mappings/{OBSERVATORY} folder; not a {OBSERVATORY} cache")
    config_dir = root / "config" / OBSERVATORY
    pmaps = sorted(found.mapping_dir.glob("*.pmap"), key=_serial)
    chosen = None
    try:
        named = crds_adapter.operational_context(config_dir)
        if (found.mapping_dir / named).is_file():
            chosen = named
        else:
            found.problems.append(f"{config_dir / 'server_config'}: operational_context "
                                  f"{named!r} does not exist in {found.mapping_dir}")
    except FileNotFoundError:
        found.problems.append(f"{config_dir / 'server_config'}: missing")
    except ValueError as error:
        found.problems.append(f"{config_dir / 'server_config'}: unreadable ({error})")
    if not (config_dir / "ref_cache_subdir_mode").is_file():
        found.problems.append(f"{config_dir / 'ref_cache_subdir_mode'}: missing")
    if chosen is None and pmaps:
        chosen = pmaps[-1].name
    if chosen is None:
        found.problems.append(f"{found.mapping_dir}: no pmap")
    for path in sorted(found.mapping_dir.glob("*.?map")):
        _check_mapping_file(found, path)
    if chosen is not None:
        _check_names(found, chosen)
    return found.problems, found, chosen


def adopt(source: str | Path, destination: str | Path | None = None,
          repair: bool = False) -> AdoptReport:
    """Report every problem of the cache at ``source``; with ``repair``, write a new one.

    Parameters
    ----------
    source : path-like
        A hand-made cache root (never written).
    destination : path-like, optional
        Where the repaired cache goes (required with ``repair``); it must not be an
        initialised cache already.
    repair : bool
        Write the new context into ``destination``.

    Returns
    -------
    AdoptReport
    """
    problems, found, chosen = inspect_cache(source)
    missing = _missing_references(found, chosen)
    problems += [f"{name}: named by {chosen} but missing from {found.root / 'references'}"
                 for name in missing]
    if not repair:
        return AdoptReport(problems, missing)
    if destination is None:
        raise CacheError("adopt --repair needs --crds-path DEST (the new cache)")
    if chosen is None:
        raise CacheError(f"{found.root}: no pmap to adopt")
    target = LocalCache(destination)
    if target.is_initialised:
        raise CacheError(f"{target.root} is already a cache; adopt into a new folder")
    if target.root == found.root or found.root in target.root.parents:
        raise CacheError("adopt writes a new cache; DEST must be outside SRC")
    target.writable_folders()  # nothing is written through a link leading outside DEST
    context, written = _write_repaired(found, chosen, target)
    for name in crds_adapter.reference_names(target.context(context)):
        origin = _source_reference(found, name)
        if origin is not None and not target.reference_path(name).exists():
            target.store_reference(origin, name)
    return AdoptReport(problems, missing, context, written)


# -- checks ---------------------------------------------------------------------------------
def _check_mapping_file(found: _Source, path: Path) -> None:
    if found.read(path.name) is None:
        return
    header = found.headers[path.name]
    problem = crds_adapter.checksum_problem(path)
    if problem:
        found.problems.append(f"{path}: stale checksum ({problem})")
    if header.get("ignore_checksum"):
        found.problems.append(f"{path}: sets 'ignore_checksum' (crds would not notice "
                              "tampering)")
    if str(header.get("name", "")) != path.name:
        found.problems.append(f"{path}: its header names it {header.get('name')!r}")


def _check_names(found: _Source, pmap: str) -> None:
    for instrument, imap in _context_items(found, pmap):
        if found.read(imap) is None and not (found.mapping_dir / imap).is_file():
            found.problems.append(f"{pmap}: names {imap} for {instrument}, which does not "
                                  "exist")
            continue
        for filekind, rmap in _context_items(found, imap):
            if rmap != mappings.NOT_APPLICABLE and not (found.mapping_dir / rmap).is_file():
                found.problems.append(f"{imap}: names {rmap} for {filekind}, which does not "
                                      "exist")


def _context_items(found: _Source, name: str) -> list[tuple[str, str]]:
    selector = found.read(name)
    if not isinstance(selector, dict):
        return []
    return [(str(key), str(value)) for key, value in selector.items()]


def _missing_references(found: _Source, pmap: str | None) -> list[str]:
    if pmap is None:
        return []
    names = set()
    for _, imap in _context_items(found, pmap):
        for _, rmap in _context_items(found, imap):
            selected = found.read(rmap) if rmap != mappings.NOT_APPLICABLE else None
            if selected is not None and hasattr(selected, "reference_names"):
                names.update(selected.reference_names())
    return sorted(n for n in names if _source_reference(found, n) is None)


def _source_reference(found: _Source, name: str) -> Path | None:
    try:
        instrument, _ = crds_adapter.file_properties(name)
    except ValueError:
        return None
    for candidate in (found.root / "references" / OBSERVATORY / instrument / name,
                      found.root / "references" / OBSERVATORY / name):
        if candidate.is_file():
            return candidate
    return None


# -- repair ---------------------------------------------------------------------------------
def _write_repaired(found: _Source, pmap: str, target: LocalCache) -> tuple[str, list[str]]:
    existing = [p.name for p in found.mapping_dir.glob("*.?map")]
    written: list[str] = []
    derived = f"adopted by dqref {__version__} from {{}} of {found.root}"
    imaps: dict[str, str] = {}
    for instrument_key, imap in _context_items(found, pmap):
        instrument = instrument_key.lower()
        selections: dict[str, str] = {}
        for filekind_key, rmap in _context_items(found, imap):
            filekind = filekind_key.lower()
            selected = found.read(rmap) if rmap != mappings.NOT_APPLICABLE else None
            if selected is None or not hasattr(selected, "reference_names"):
                selections[filekind] = mappings.NOT_APPLICABLE
                continue
            suffix = crds_adapter.locator().filekind_to_suffix(instrument, filekind)
            name = _next_name(f"{OBSERVATORY}_{instrument}_{suffix}", "rmap", existing)
            text = crds_adapter.rewrite_rmap(selected, name, derived.format(rmap))
            _publish(target, name, text, existing, written)
            selections[filekind] = name
        if not selections and found.read(imap) is None:
            continue  # dangling imap: the instrument is left out (reported)
        dq = selections.pop(crds_adapter.REFTYPE, mappings.NOT_APPLICABLE)
        name = _next_name(f"{OBSERVATORY}_{instrument}", "imap", existing)
        text = mappings.render_imap(name, instrument.upper(), dq, derived.format(imap),
                                    others=selections)
        _publish(target, name, text, existing, written)
        imaps[instrument.upper()] = name
    for instrument in ("IRIS", "LIGER"):
        if instrument not in imaps:  # every instrument has an imap, as in dqref's caches
            name = _next_name(f"{OBSERVATORY}_{instrument.lower()}", "imap", existing)
            _publish(target, name, mappings.render_imap(
                name, instrument, mappings.NOT_APPLICABLE, derived.format("nothing")),
                existing, written)
            imaps[instrument] = name
    name = _next_name(OBSERVATORY, "pmap", existing)
    _publish(target, name, mappings.render_pmap(name, imaps, derived.format(pmap)), existing,
             written)
    for folder in target.writable_folders():
        with filesystem.writing(folder):
            folder.mkdir(parents=True, exist_ok=True)
    target.context(name)  # the whole new context loads with crds before it becomes current
    target.use_context(name)
    return name, written


def _publish(target: LocalCache, name: str, text: str, existing: list[str],
             written: list[str]) -> None:
    target.publish_mapping(name, text)
    existing.append(name)
    written.append(name)


def _next_name(stem: str, extension: str, existing: list[str]) -> str:
    family = re.compile(rf"{re.escape(stem)}_(\d{{4,}})\.{extension}")
    serials = [int(m.group(1)) for n in existing if (m := family.fullmatch(n))]
    return f"{stem}_{max(serials, default=0) + 1:04d}.{extension}"


def _serial(path: Path) -> int:
    match = _SERIAL.search(path.name)
    return int(match.group(1)) if match else -1


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())
