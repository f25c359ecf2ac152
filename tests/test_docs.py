"""The documentation is executed and built: the tutorial's code runs, and the Sphinx build
(warnings as errors) documents every command of both programs and the public API."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.main import get_command

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
TAG = re.compile(r"<[^>]+>")


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


def walk_commands(command, full_name: str, parent=None):
    """Yield (full name, command, context) for a click command and its subcommands."""
    context = command.make_context(full_name.split()[-1], [], parent=parent,
                                   resilient_parsing=True)
    yield full_name, command, context
    if hasattr(command, "list_commands"):  # a group (typer vendors its own click)
        for name in command.list_commands(context):
            sub = command.get_command(context, name)
            if not sub.hidden:
                yield from walk_commands(sub, f"{full_name} {name}", context)


def app_commands() -> list[tuple]:
    from dqinit.cli import app as dqinit_app
    from dqref.cli import app as dqref_app

    return [*walk_commands(get_command(dqref_app), "dqref"),
            *walk_commands(get_command(dqinit_app), "dqinit")]


def page_text(page: Path) -> str:
    """The visible text of an HTML page, whitespace collapsed."""
    return " ".join(html.unescape(TAG.sub(" ", page.read_text())).split())


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory) -> Path:
    """The HTML documentation, built as ``make docs`` builds it (Sphinx -W) into tmp."""
    output = tmp_path_factory.mktemp("docs") / "html"
    build = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_docs.py"), "--output", str(output),
         "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, f"sphinx -W failed:\n{build.stderr}"
    assert "WARNING" not in build.stderr
    return output


@pytest.mark.slow
def test_cli_page_has_a_section_for_every_command_with_every_option(built_docs):
    page = built_docs / "cli.html"
    source, text = page.read_text(), page_text(page)
    commands = app_commands()
    names = [name for name, _, _ in commands]
    assert {"dqref", "dqref cache", "dqref cache add", "dqref derive", "dqinit run"} <= set(names)
    for name, command, context in commands:
        anchor = name.replace(" ", "-")
        assert f'id="{anchor}"' in source, f"no section for `{name}` in cli.html"
        assert f"{name} [OPTIONS]" in text, f"no usage line for `{name}`"
        for param in command.get_params(context):  # with the help option (-h, --help)
            if param.param_type_name == "option" and not param.hidden:
                for option in param.opts + param.secondary_opts:
                    alone = re.compile(rf"(?<![\w-]){re.escape(option)}(?![\w-])")
                    assert alone.search(text), f"`{name}`: option {option} missing from cli.html"


@pytest.mark.slow
def test_derive_command_with_its_own_click_class_is_documented(built_docs):
    text = page_text(built_docs / "cli.html")
    assert "dqref derive [OPTIONS] {output}" in text
    assert "--flats <list[Path]> Flat slope images: --flats F1 F2" in text


@pytest.mark.slow
def test_api_pages_document_the_public_classes_and_functions(built_docs):
    api = built_docs / "api"
    expected = {
        "dqref.model": ["dqref.model.DQModel", "dqref.model.DQModel.write"],
        "dqref.flags": ["dqref.flags.value", "dqref.flags.names"],
        "dqref.cache.local_cache": ["dqref.cache.local_cache.LocalCache"],
        "dqref.derive.api": ["dqref.derive.api.derive_reference"],
        "dqinit.step": ["dqinit.step.DQInitStep"],
        "dqinit.core": ["dqinit.core.dq_init"],
        "dqinit.layouts": ["dqinit.layouts.open_ramp"],
    }
    for module, objects in expected.items():
        source = (api / f"{module}.html").read_text()
        assert f'id="module-{module}"' in source
        for name in objects:
            assert f'id="{name}"' in source, f"{name} not documented in api/{module}.html"
    index = page_text(api / "index.html")
    assert "dqref.model" in index and "dqinit.step" in index


@pytest.mark.slow
def test_pages_show_the_installed_version_and_link_every_guide_page(built_docs):
    index = (built_docs / "index.html").read_text()
    assert f"ligeriri-dq {version('ligeriri-dq')}" in index
    for page in ("tutorial", "references", "validation", "diff", "derive", "cache", "step",
                 "pipeline", "parallel", "promises", "cli", "api/index"):
        assert f'href="{page}.html"' in index, f"index.html does not link {page}.html"
        assert (built_docs / f"{page}.html").is_file()
