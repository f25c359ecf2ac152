"""Build the generated parts of docs/ (``make docs``): the CLI reference.

docs/cli.md is generated from the typer apps themselves, so it cannot drift; the test
suite fails when the committed file differs from what this script produces.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ["TYPER_USE_RICH"] = "0"  # plain click help text; must precede importing typer

from typer.main import get_command  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "cli.md"


def command_sections(name: str, command, path: list[str]) -> list[str]:
    """Return markdown sections for a command and its subcommands, depth first."""
    full_name = " ".join(path + [name])
    context = command.context_class(command, info_name=full_name, terminal_width=100)
    help_text = command.get_help(context)
    sections = [f"## `{full_name}`\n\n```text\n{help_text}\n```\n"]
    if hasattr(command, "list_commands"):  # a group (typer vendors its own click)
        for sub_name in sorted(command.list_commands(context)):
            sections += command_sections(sub_name, command.get_command(context, sub_name),
                                         path + [name])
    return sections


def render() -> str:
    from dqinit.cli import app as dqinit_app
    from dqref.cli import app as dqref_app

    parts = ["# Command-line reference\n",
             "Generated from the typer apps by `make docs` (scripts/build_docs.py); do not edit.\n"]
    for name, app in (("dqref", dqref_app), ("dqinit", dqinit_app)):
        parts += command_sections(name, get_command(app), [])
    text = "\n".join(parts)
    return "\n".join(line.rstrip() for line in text.splitlines()) + "\n"


def main() -> int:
    TARGET.write_text(render())
    print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
