"""Build the HTML documentation (``make docs``): Sphinx, every warning an error.

The API reference (docstrings) and the CLI reference (the typer apps) are generated during
the build, so nothing generated is committed and nothing can go stale. tests/test_docs.py
runs this same build into a temporary folder.

Usage: ``python scripts/build_docs.py [--output DIR] [--quiet]``
(default output: docs/_build/html).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
DEFAULT_OUTPUT = DOCS / "_build" / "html"


def sphinx_arguments(output: Path, quiet: bool = False) -> list[str]:
    """The sphinx-build arguments of the documentation build.

    ``-E`` rereads every page: autodoc and the CLI page depend on Python code that Sphinx
    does not track, so an incremental build could keep a stale page.
    """
    arguments = ["-W", "--keep-going", "-E", "-b", "html", str(DOCS), str(output)]
    return arguments + (["-q"] if quiet else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help=f"HTML folder (default: {DEFAULT_OUTPUT.relative_to(ROOT)})")
    parser.add_argument("--quiet", action="store_true", help="print warnings only")
    options = parser.parse_args(argv)

    from sphinx.cmd.build import build_main

    status = build_main(sphinx_arguments(options.output, options.quiet))
    if status == 0 and not options.quiet:
        print(f"documentation: {options.output / 'index.html'}")
    return status


if __name__ == "__main__":
    sys.exit(main())
