"""Render CRDS mappings from the jinja2 templates in ``rmaps/`` and prove them with crds.

Every value that reaches a template comes from a header, so it is checked against a
strict character set first and rendered as a Python literal (``repr``); a crafted
DETECTOR or USEAFTER cannot inject code or break the mapping. Reference names are judged
by the observatory's crds naming rules (``locate.py``) and a safe character set. crds then
writes each rendered mapping with its checksum (as ``crds checksum`` would), and it is
parsed back by crds before anyone publishes it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import jinja2

import rmaps
from dqref import values
from dqref.cache import crds_adapter
from dqref.detectors import canonical_detector
from dqref.errors import DQRefError

#: Match value of a full-frame reference: crds's "not applicable", which matches every
#: subarray with less weight than an exact name, so a subarray-specific reference wins
#: when one exists and the full frame (from which dqinit extracts) serves all others.
ANY_SUBARRAY = "N/A"
#: imap value meaning "no dq rules yet" (crds returns NOT FOUND n/a).
NOT_APPLICABLE = "N/A"
_PLACEHOLDER_SUM = "0" * 40
#: Characters a reference name may use in a mapping (crds's own names and the team's fit).
_SAFE_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,200}")
_MAPPING_NAME = re.compile(r"ligeriri(_[a-z]+){0,2}_\d{4,}\.[pir]map")
_USEAFTER = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")  # always used with fullmatch


class MappingValueError(DQRefError, ValueError):
    """A value refused for a mapping (unsafe characters, wrong format)."""


class MappingLoadError(DQRefError):
    """crds could not load a mapping (malformed, corrupted, checksum mismatch)."""


@dataclass(frozen=True)
class UseAfterEntry:
    useafter: str  # "YYYY-MM-DD HH:MM:SS", the crds UseAfter format
    reference: str


@dataclass(frozen=True)
class MatchRule:
    """All references of one (detector, subarray) slot, ordered by useafter."""

    detector: str
    subarray: str
    entries: tuple[UseAfterEntry, ...] = field(default_factory=tuple)


def rmap_useafter(iso_datetime: str) -> str:
    """Return an ISO date-time in crds's UseAfter format ``YYYY-MM-DD HH:MM:SS``."""
    try:
        return values.normalize_datetime(iso_datetime).replace("T", " ")
    except ValueError as error:
        raise MappingValueError(f"USEAFTER: {error}") from None


def _literal(value) -> str:
    """Render a checked value as a Python literal (the jinja2 ``literal`` filter)."""
    if not isinstance(value, str):
        raise MappingValueError(f"mapping value {value!r} is not a string")
    return repr(value)


_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(rmaps.TEMPLATES)),
    autoescape=False,  # the output is Python source, made safe by the literal filter
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
)
_ENVIRONMENT.filters["literal"] = _literal


def _checked_name(value: str, what: str) -> str:
    if value == ANY_SUBARRAY and what == "subarray":
        return value
    try:
        return values.check_name(value, what)
    except ValueError as error:
        raise MappingValueError(str(error)) from None


def _checked_file(value: str, pattern: re.Pattern, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise MappingValueError(f"{what} {value!r} is not a valid file name for this cache")
    return value


def checked_reference_name(value: str, filekind: str = "dq") -> str:
    """Return ``value`` if crds's ligeriri rules accept it as a ``filekind`` reference name.

    Raises
    ------
    MappingValueError
        Unsafe characters, or the name does not say (to crds) which instrument and
        filekind it is.
    """
    _checked_file(value, _SAFE_FILE_NAME, "reference")
    try:
        _, kind = crds_adapter.file_properties(value)
    except ValueError as error:
        raise MappingValueError(str(error)) from None
    if kind != filekind:
        raise MappingValueError(f"reference {value!r} is a {kind} reference, not {filekind}")
    return value


def _render(template: str, name: str, **context) -> str:
    text = _ENVIRONMENT.get_template(template).render(name=name, sha1sum=_PLACEHOLDER_SUM,
                                                     **context)
    try:
        return crds_adapter.with_checksum(text, name)
    except (crds_adapter.MappingError, SyntaxError, ValueError) as error:
        raise MappingValueError(f"{name}: crds refuses the rendered mapping: {error}") from None


def render_rmap(name: str, instrument: str, rules: list[MatchRule], derived_from: str) -> str:
    """Render a dq rmap: Match on (detector, subarray), then UseAfter on the date."""
    _checked_file(name, _MAPPING_NAME, "rmap name")
    checked = []
    for rule in sorted(rules, key=lambda r: (r.detector, r.subarray)):
        entries = []
        for entry in sorted(rule.entries, key=lambda e: e.useafter):
            if not _USEAFTER.fullmatch(entry.useafter):
                raise MappingValueError(f"USEAFTER {entry.useafter!r} is not 'YYYY-MM-DD HH:MM:SS'")
            try:
                values.normalize_datetime(entry.useafter)
            except ValueError as error:
                raise MappingValueError(f"USEAFTER: {error}") from None
            entries.append(UseAfterEntry(entry.useafter,
                                         checked_reference_name(entry.reference)))
        # rules carry the canonical detector name (IRIS1 -> IMG1); crds's locate hook
        # canonicalises the dataset's DETECTOR the same way, so aliases select alike
        detector = canonical_detector(instrument, _checked_name(rule.detector, "detector"))
        checked.append(MatchRule(detector,
                                 _checked_name(rule.subarray, "subarray"), tuple(entries)))
    return _render("reference.rmap.j2", name, instrument=_checked_name(instrument, "instrument"),
                   rules=checked, derived_from=derived_from)


def render_imap(name: str, instrument: str, rmap_name: str, derived_from: str,
                others: dict[str, str] | None = None) -> str:
    """Render an instrument mapping selecting ``rmap_name`` (or ``"N/A"``) for dq.

    ``others`` maps the other filekinds (dark, flat, ...) to their rmaps, kept as they are.
    """
    _checked_file(name, _MAPPING_NAME, "imap name")
    selections = {"dq": rmap_name}
    for filekind, selected in (others or {}).items():
        selections[_checked_name(filekind, "filekind").lower()] = selected
    for selected in selections.values():
        if selected != NOT_APPLICABLE:
            _checked_file(selected, _MAPPING_NAME, "rmap name")
    return _render("instrument.imap.j2", name,
                   instrument=_checked_name(instrument, "instrument"),
                   selections=sorted(selections.items()), derived_from=derived_from)


def render_pmap(name: str, imaps: dict[str, str], derived_from: str) -> str:
    """Render a pipeline mapping selecting one imap per instrument."""
    _checked_file(name, _MAPPING_NAME, "pmap name")
    selections = [(_checked_name(instrument, "instrument"),
                   _checked_file(imap, _MAPPING_NAME, "imap name"))
                  for instrument, imap in sorted(imaps.items())]
    return _render("pipeline.pmap.j2", name, selections=selections, derived_from=derived_from)


def prove(text: str, name: str):
    """Parse rendered mapping ``text`` with crds; raise `MappingLoadError` if it refuses."""
    try:
        return crds_adapter.parse_mapping(text, name)
    except (crds_adapter.MappingError, crds_adapter.ChecksumError) as error:
        raise MappingLoadError(f"{name}: crds cannot load it: {error}") from None
