"""docs/promises.md names, for each promise, the tests that check it: they must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_the_promises_page_names_exists():
    page = (ROOT / "docs" / "promises.md").read_text()
    named, missing, current = 0, [], None
    for match in re.finditer(r"`tests/(test_\w+\.py)`|`(test_\w+)`", page):
        if match.group(1):
            current = ROOT / "tests" / match.group(1)
            assert current.is_file(), current
            continue
        named += 1
        if f"def {match.group(2)}(" not in current.read_text():
            missing.append(f"{current.name}::{match.group(2)}")
    assert named >= 30 and not missing, missing
