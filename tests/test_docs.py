"""The documentation is executed: the tutorial's code runs and the CLI reference is current."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def test_tutorial_code_blocks_run_in_order(tmp_path, monkeypatch):
    text = (ROOT / "docs" / "tutorial.md").read_text()
    blocks = FENCE.findall(text)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"docs/tutorial.md block {number}", "exec"), namespace)
    assert (tmp_path / "crds_cache" / "references" / "ligeriri" / "iris" /
            "iris_dq_0001.fits").is_file()


def test_cli_reference_is_generated_from_the_current_apps():
    generated = subprocess.run([sys.executable, "-c", (
        "import sys; sys.path.insert(0, 'scripts'); import build_docs; "
        "sys.stdout.write(build_docs.render())")], cwd=ROOT, capture_output=True, text=True,
        check=True).stdout
    committed = (ROOT / "docs" / "cli.md").read_text()
    assert generated == committed, "docs/cli.md is stale: run `make docs`"
