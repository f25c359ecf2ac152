"""Sphinx directive ``typer-cli``: a command-line reference built from a typer app.

The page is written at build time from the app's click commands
(``typer.main.get_command(app)``), so it cannot drift from the code. typer >= 0.2x
vendors its own copy of click, which is why sphinx-click (``isinstance`` checks against
the installed click) does not recognise its commands; this directive only relies on the
methods every click command has (``get_params``, ``collect_usage_pieces``, and
``list_commands``/``get_command`` for groups), so custom command classes such as dqref's
``DeriveCommand`` render like the others.

Usage in a MyST page::

    ```{typer-cli} dqref.cli:app
    :prog: dqref
    ```
"""

from __future__ import annotations

import importlib
import inspect
import re

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

# ``literal``, `literal` and option names (-j, --from-list) in help texts become literals;
# everything else stays plain text (help texts are not markup)
INLINE_LITERAL = re.compile(r"``(.+?)``|`([^`]+?)`|(?<![\w-])(--?[A-Za-z][\w-]*)")


def load_app(target: str):
    """Return the object that ``"package.module:attribute"`` names."""
    module_name, _, attribute = target.partition(":")
    if not attribute:
        raise ValueError(f"typer-cli: {target!r} is not 'module:attribute'")
    return getattr(importlib.import_module(module_name), attribute)


def is_group(command) -> bool:
    """Whether a click command has subcommands (duck-typed: typer vendors click)."""
    return hasattr(command, "list_commands")


def subcommands(command, context) -> list[tuple[str, object]]:
    """The visible subcommands of a group, in the order ``--help`` lists them."""
    found = []
    for name in command.list_commands(context):
        sub = command.get_command(context, name)
        if sub is not None and not getattr(sub, "hidden", False):
            found.append((name, sub))
    return found


def inline_text(text: str) -> list[nodes.Node]:
    """Text with its backquoted parts as literals (help texts are not parsed as markup)."""
    parts: list[nodes.Node] = []
    position = 0
    for match in INLINE_LITERAL.finditer(text):
        if match.start() > position:
            parts.append(nodes.Text(text[position:match.start()]))
        literal = next(group for group in match.groups() if group)
        parts.append(nodes.literal(literal, literal))
        position = match.end()
    if position < len(text):
        parts.append(nodes.Text(text[position:]))
    return parts


def help_paragraphs(text: str | None) -> list[nodes.Node]:
    """Paragraphs of a click help text (blank-line separated; ``\\b`` keeps line breaks)."""
    blocks = []
    for block in re.split(r"\n\s*\n", inspect.cleandoc(text or "")):
        if not block.strip():
            continue
        if block.startswith("\b"):  # click's "do not rewrap" marker
            lines = block[1:].strip("\n").splitlines()
            line_block = nodes.line_block()
            for line in lines:
                line_block += nodes.line(line, "", *inline_text(line))
            blocks.append(line_block)
        else:
            joined = " ".join(line.strip() for line in block.splitlines())
            blocks.append(nodes.paragraph(joined, "", *inline_text(joined)))
    return blocks


def parameter_list(records: list[tuple[str, str]]) -> nodes.definition_list:
    """A definition list of (option names, help) records, as click's help shows them."""
    listing = nodes.definition_list()
    for names, help_text in records:
        item = nodes.definition_list_item()
        item += nodes.term(names, "", nodes.literal(names, names))
        definition = nodes.definition()
        definition += help_paragraphs(help_text) or [nodes.paragraph()]
        item += definition
        listing += item
    return listing


def rubric(text: str) -> nodes.rubric:
    return nodes.rubric(text, text)


class TyperCliDirective(SphinxDirective):
    """Document a typer app: one section per command, subcommands nested, depth first."""

    required_arguments = 1
    option_spec = {"prog": directives.unchanged_required}

    def run(self) -> list[nodes.Node]:
        import typer.main  # imported here: conf.py need not import typer

        command = typer.main.get_command(load_app(self.arguments[0]))
        prog = self.options.get("prog") or command.name
        return [self.command_section(command, prog, parent_context=None)]

    def command_section(self, command, full_name: str, parent_context) -> nodes.section:
        # as click's make_context builds it: the command's context_settings (e.g. -h) apply
        context = command.context_class(command, info_name=full_name.split()[-1],
                                        parent=parent_context,
                                        **(getattr(command, "context_settings", None) or {}))
        section_id = nodes.make_id(full_name)
        section = nodes.section(ids=[section_id], names=[nodes.fully_normalize_name(full_name)])
        # what a user types must not become curly quotes or dashes ('local', --repair)
        section["support_smartquotes"] = False
        self.state.document.note_implicit_target(section, section)
        section += nodes.title(full_name, "", nodes.literal(full_name, full_name))
        section += help_paragraphs(command.help)

        usage = f"{full_name} {' '.join(command.collect_usage_pieces(context))}".rstrip()
        section += rubric("Usage")
        section += nodes.literal_block(usage, usage, language="text")

        arguments, options = [], []
        for param in command.get_params(context):
            record = param.get_help_record(context)
            if param.param_type_name == "argument":
                arguments.append(record or (param.human_readable_name, ""))
            elif record is not None:  # hidden options have no record
                options.append(record)
        for heading, records in (("Arguments", arguments), ("Options", options)):
            if records:
                section += rubric(heading)
                section += parameter_list(records)
        if getattr(command, "epilog", None):
            section += help_paragraphs(command.epilog)

        if is_group(command):
            children = subcommands(command, context)
            if children:
                section += rubric("Commands")
                listing = nodes.bullet_list()
                for name, sub in children:
                    child_name = f"{full_name} {name}"
                    link = nodes.reference("", "", nodes.literal(name, name), internal=True,
                                           refid=nodes.make_id(child_name))
                    paragraph = nodes.paragraph("", "", link)
                    short_help = sub.get_short_help_str(limit=100)
                    if short_help:
                        paragraph += nodes.Text(": ")
                        paragraph += inline_text(short_help)
                    listing += nodes.list_item("", paragraph)
                section += listing
                for name, sub in children:
                    section += self.command_section(sub, f"{full_name} {name}", context)
        return section


def setup(app: Sphinx) -> dict:
    app.add_directive("typer-cli", TyperCliDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
