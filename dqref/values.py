"""Formats of metadata values: dates, pedigree and names.

These rules are shared by validation, the FITS layout and the mapping generator. The
name rule is deliberately strict: values that end up inside a CRDS rmap are restricted
to a character set that cannot break out of a Python string literal.
"""

from __future__ import annotations

import re

#: Instrument, detector and subarray names: letters, digits, underscore, dash.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")
_ISO_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}:\d{2})(\.\d{1,6})?)?$")
_INFLIGHT = re.compile(r"^INFLIGHT (\d{4}-\d{2}-\d{2}) (\d{4}-\d{2}-\d{2})$")
PEDIGREES = ("GROUND", "SIMULATION", "DUMMY")


def normalize_datetime(value: str) -> str:
    """Return an ISO date-time as ``YYYY-MM-DDTHH:MM:SS`` (date alone means midnight).

    Raises
    ------
    ValueError
        ``value`` is not an ISO date or date-time, or names an impossible date.
    """
    text = str(value)
    match = _ISO_DATE.fullmatch(text.strip(" "))
    if not match:
        raise ValueError(f"{value!r} is not an ISO date-time (YYYY-MM-DDTHH:MM:SS)")
    date, time = match.group(1), match.group(2) or "00:00:00"
    from astropy.time import Time  # 0.2 s to import: only when a date is checked

    try:
        Time(f"{date}T{time}", format="isot", scale="utc")
    except ValueError:
        raise ValueError(f"{value!r} is not a real date-time") from None
    return f"{date}T{time}"


def check_pedigree(value: str) -> str:
    """Return ``value`` if it is a valid PEDIGREE, else raise ValueError."""
    text = str(value).strip(" ").upper()
    if text in PEDIGREES:
        return text
    match = _INFLIGHT.fullmatch(text)
    if match:
        start, end = (normalize_datetime(d) for d in match.groups())
        if end < start:
            raise ValueError(f"PEDIGREE {value!r}: the end date is before the start date")
        return text
    raise ValueError(f"PEDIGREE {value!r} must be one of {', '.join(PEDIGREES)} "
                     "or 'INFLIGHT YYYY-MM-DD YYYY-MM-DD'")


def check_name(value: str, what: str) -> str:
    """Return ``value`` upper-cased if it is a safe name, else raise ValueError."""
    text = str(value)
    if not NAME_PATTERN.fullmatch(text):
        raise ValueError(f"{what} {value!r} may only contain letters, digits, '_' and '-' "
                         "(at most 40 characters)")
    return text.upper()


def check_header_text(value: str, what: str) -> str:
    """Return ``value`` if it can be a FITS header value (printable ASCII), else raise."""
    text = str(value)
    if not (text.isascii() and text.isprintable()):
        bad = next(c for c in text if not (c.isascii() and c.isprintable()))
        raise ValueError(f"{what} must be printable ASCII (FITS headers); found {bad!r}")
    return text
