"""The rules index: crds's own answer to "which rules has this context", kept and verified.

Loading a context with crds costs most of a second (``import crds`` pulls astropy, asdf
and requests), while ``dqref cache list`` only shows rules that cannot change as long as
the mapping files keep their bytes. So when `LocalCache` has asked crds for the rules of a
context, it writes them here, in ``<cache>/.dqref/rules/<pmap>.json``, with the sha256 of
every mapping file the context names (the pmap, its imaps, their rmaps). crds reads only
``mappings/``, ``references/``, ``config/`` and ``pickles/`` of a cache, so it never sees
the folder.

An index is used only if it is a regular file inside the cache root (links resolved)
holding this module's `FORMAT`, the installed dqref and crds versions, the context's
name, and digests that every listed mapping file's current bytes still match; the pmap is
among them, and its bytes fix which imaps it names, whose bytes fix their rmaps. Anything
else (missing, stale, edited, unreadable, not UTF-8, not JSON, another context's) means
"ask crds again". Writing is best effort: a read-only or full disk, or a folder that
resolves outside the cache, skips it silently. Nothing here imports crds, numpy or
astropy.

A tampered index whose digests still match the mappings is trusted: the index lives under
the cache root, which only dqref writes (docs/cache.md, "The rules index").
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from dqref.atomic import publish_text
from dqref.cache import filesystem
from dqref.errors import DQRefError

#: The layout of an index document; a reader refuses any other.
FORMAT = 1
#: Where the indexes live, relative to the cache root.
FOLDER = Path(".dqref") / "rules"
#: The keys of one rule, as `LocalCache.rules` returns them (`RuleEntry` fields).
RULE_KEYS = ("instrument", "detector", "subarray", "useafter", "reference")
#: Larger files are not indexes of ours (a context's index is a few kB).
_MAX_BYTES = 64 << 20
#: A mapping name in an index: a plain file name, so a digest is always of a file in the
#: mapping folder (nothing to escape with).
_MAPPING_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,200}\.[pir]map")

#: ``{file name: (inode, size, mtime in ns)}`` of a mapping folder.
Snapshot = Mapping[str, tuple[int, int, int]]


def index_path(root: Path, context: str) -> Path:
    """Return the index file of ``context`` (a pmap name) in the cache at ``root``."""
    if not _MAPPING_NAME.fullmatch(context):
        raise ValueError(f"{context!r} is not a mapping name")
    return root / FOLDER / f"{context}.json"


def snapshot(mapping_dir: Path) -> dict[str, tuple[int, int, int]]:
    """Return what identifies each file's bytes in ``mapping_dir`` now: take it before crds
    loads a context, so `write` can tell that no file changed while crds was reading."""
    found = {}
    try:
        with os.scandir(mapping_dir) as entries:
            for entry in entries:
                try:
                    status = entry.stat(follow_symlinks=True)
                except OSError:
                    continue
                if stat.S_ISREG(status.st_mode):
                    found[entry.name] = _identity(status)
    except OSError:
        return {}
    return found


def read(root: Path, mapping_dir: Path, context: str, versions: Mapping[str, str]
         ) -> list[dict[str, str]] | None:
    """Return the rules the index of ``context`` records, or None when it cannot be trusted.

    Parameters
    ----------
    root, mapping_dir : Path
        The cache root and its mapping folder.
    context : str
        The pmap name.
    versions : mapping
        ``{"dqref_version": ..., "crds_version": ...}`` of this installation; an index
        written by other versions is not used.

    Returns
    -------
    list of dict or None
        One ``{key: str}`` per rule (keys `RULE_KEYS`), in crds's order.
    """
    try:
        # an index is believed only where only dqref writes: inside the cache root
        path = filesystem.inside(root, index_path(root, context))
        data = _regular_file_bytes(path)
        document = json.loads(data.decode("utf-8")) if data is not None else None
    except (OSError, ValueError, RecursionError, DQRefError):  # UnicodeError, JSON errors
        return None
    if not _describes(document, context, versions):
        return None
    for name, digest in document["mappings"].items():
        if _digest(mapping_dir / name) != digest:
            return None
    return [dict(rule) for rule in document["rules"]]


def write(root: Path, mapping_dir: Path, context: str, mapping_names: Sequence[str],
          rules: Sequence[Mapping[str, str]], versions: Mapping[str, str],
          before: Snapshot) -> bool:
    """Record ``rules``, crds's answer for ``context``, in its index; best effort.

    Parameters
    ----------
    mapping_names : sequence of str
        Every mapping file the loaded context names (itself included).
    rules : sequence of mapping
        ``{key: str}`` per rule (`RULE_KEYS`).
    versions : mapping
        As for `read`.
    before : mapping
        The `snapshot` of ``mapping_dir`` taken before crds loaded the context. A file
        that has changed since (or changes while it is hashed) is not what crds read, so
        nothing is written.

    Returns
    -------
    bool
        Whether the index was written. A read-only or full disk, a folder that resolves
        outside the cache, or any doubt about the files skips it silently.
    """
    digests = {}
    for name in sorted(mapping_names):
        if not _MAPPING_NAME.fullmatch(name) or name not in before:
            return False
        digest = _digest(mapping_dir / name, expected=before[name])
        if digest is None:
            return False
        digests[name] = digest
    document = {"format": FORMAT, **versions, "context": context, "mappings": digests,
                "rules": [{key: rule[key] for key in RULE_KEYS} for rule in rules]}
    path = index_path(root, context)
    try:
        filesystem.inside(root, path.parent)
        publish_text(path, json.dumps(document, indent=1) + "\n", overwrite=True)
    except (OSError, DQRefError):
        return False
    return True


def _describes(document, context: str, versions: Mapping[str, str]) -> bool:
    """Whether ``document`` is an index of ours for ``context`` under these versions."""
    if not isinstance(document, dict) or document.get("format") != FORMAT \
            or document.get("context") != context:
        return False
    if any(document.get(key) != value for key, value in versions.items()):
        return False
    named, rules = document.get("mappings"), document.get("rules")
    if not isinstance(named, dict) or context not in named or not isinstance(rules, list):
        return False
    if not all(isinstance(name, str) and _MAPPING_NAME.fullmatch(name)
               and isinstance(digest, str) for name, digest in named.items()):
        return False
    return all(isinstance(rule, dict) and sorted(rule) == sorted(RULE_KEYS)
               and all(isinstance(value, str) for value in rule.values()) for rule in rules)


def _digest(path: Path, expected: tuple[int, int, int] | None = None) -> str | None:
    """Return the sha256 of a regular file's bytes, or None (missing, not regular, or,
    with ``expected``, not the file `snapshot` saw, before or after it was read)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        before = os.fstat(descriptor)
        if not stat.S_ISREG(before.st_mode):
            return None
        if expected is not None and _identity(before) != expected:
            return None
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
        if expected is not None and _identity(os.fstat(descriptor)) != expected:
            return None
    return digest


def _regular_file_bytes(path: Path) -> bytes | None:
    """Return a regular file's bytes (a FIFO or a device is never read), else None."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or status.st_size > _MAX_BYTES:
            return None
        return handle.read(_MAX_BYTES + 1)


def _identity(status: os.stat_result) -> tuple[int, int, int]:
    return status.st_ino, status.st_size, status.st_mtime_ns
