"""The ``--json`` documents of ``dqref cache list | bestref | verify | clean``.

One function per command builds a plain dict; its keys are the stable schema documented in
docs/cache.md (``tests/test_hostile_cache.py`` checks the real output against the examples
there). ``schema_version`` is every command's `dqref.cli_conventions.JSON_SCHEMA_VERSION`:
it changes only when a key changes meaning or goes away; new keys may be added without a
change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from dqref.cli_conventions import JSON_SCHEMA_VERSION

if TYPE_CHECKING:
    from dqref.cache.local_cache import BestRef, RemovedFile, RuleEntry, VerifyReport


def dumps(document: dict) -> str:
    """Return ``document`` as the printed JSON text, ``schema_version`` first."""
    return json.dumps({"schema_version": JSON_SCHEMA_VERSION, **document}, indent=2)


def listing(root: Path, context: str, current: bool, rules: Sequence[RuleEntry],
            references: Sequence[Path]) -> dict:
    """``dqref cache list --json``: a context, its rules and the references on disk."""
    return {"cache": str(root), "context": context, "current": current,
            "rules": [{"instrument": rule.instrument, "detector": rule.detector,
                       "subarray": rule.subarray, "useafter": rule.useafter,
                       "reference": rule.reference} for rule in rules],
            "references": [str(path) for path in references]}


def bestref(answer: BestRef) -> dict:
    """``dqref cache bestref --json``: the answer, and whether its file is on disk."""
    return {"context": answer.context, "found": answer.found, "reference": answer.reference,
            "path": str(answer.path) if answer.path is not None else None,
            "exists": answer.exists, "reason": answer.reason, "origin": answer.origin}


def verify(root: Path, report: VerifyReport) -> dict:
    """``dqref cache verify --json``: every problem and warning."""
    return {"cache": str(root), "context": report.context, "ok": report.ok,
            "problems": list(report.problems), "warnings": list(report.warnings)}


def clean(root: Path, removed: Sequence[RemovedFile]) -> dict:
    """``dqref cache clean --json``: the temporary files removed, with their sizes."""
    return {"cache": str(root),
            "removed": [{"path": str(item.path), "bytes": item.size} for item in removed]}
