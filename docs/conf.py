"""Sphinx configuration of the ligeriri-dq documentation (``make docs``).

Pages are MyST Markdown; the API reference comes from the numpydoc docstrings (autodoc +
napoleon) and the CLI reference from the typer apps (the local ``typer_cli`` extension),
both at build time. No extension fetches anything over the network (no intersphinx).
"""

from __future__ import annotations

import sys
from importlib.metadata import version as installed_version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "ligeriri-dq"
author = "the ligeriri-dq developers"
copyright = "the ligeriri-dq developers, BSD-3-Clause"
release = installed_version("ligeriri-dq")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "typer_cli",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
root_doc = "index"

# MyST: `[cache.md](cache.md#a-heading)` links resolve to pages and their headings
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence", "deflist"]

# API reference: numpydoc-style docstrings; `name` in a docstring is a cross-reference
default_role = "py:obj"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False

html_theme = "furo"
html_title = f"ligeriri-dq {release}"
