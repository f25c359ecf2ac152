"""The LICENSE file that pyproject declares exists and is the BSD-3-Clause text."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_license_is_bsd_3_clause_of_the_ligeriri_dq_developers():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License\n")
    assert "Copyright (c) 2026, the ligeriri-dq developers" in text
    assert "3. Neither the name of the copyright holder" in text
