"""The only module that touches crds internals.

crds has no plugin interface for new observatories. Our observatory package
(``dqref/cache/observatory/``) becomes ``crds.ligeriri`` through a lazy import hook
(``_ligeriri_crds_hook.py``, started by a ``.pth`` file in site-packages), so crds's own
commands and ``crds.getrecommendations`` know ``ligeriri`` in any process where this package
is installed. Everything else in dqref talks to the small API below: loading and checking
mappings, crds checksums, best references, the ``server_config`` file, and the reference
checks other packages register. ``tests/test_crds_adapter.py`` pins every crds behaviour we
rely on; pyproject.toml bounds crds to the tested series.

Importing this module imports no crds (``import crds`` costs most of a second): each
function imports what it uses, and `read_server_config` / `operational_context` need none,
so ``dqref cache list`` with a valid rules index never loads crds.
"""

from __future__ import annotations

import ast
import contextlib
import datetime
import functools
import importlib
import importlib.metadata
import logging
import os
import pprint
import re
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

OBSERVATORY = "ligeriri"
REFTYPE = "dq"
#: The entry point group of reference checks (``check(model, path) -> list[Finding]``).
CHECKS_GROUP = "ligeriri_dq.reference_checks"
#: crds's file naming where the cache keeps references: one folder per instrument.
SUBDIR_MODE = "instrument"
_environment_lock = threading.RLock()

#: crds's exception classes this module lends its callers (``crds_adapter.MappingError``),
#: resolved on first use (`__getattr__`) so that importing this module imports no crds:
#: crds raises them for malformed, unparsable or tampered mappings.
_CRDS_EXCEPTIONS = ("MappingError", "ChecksumError")
#: Characters a file name in the cache may use (crds's names and the team's fit in these).
_SAFE_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,200}")
_CLASS_NAMES = {".pmap": "PipelineContext", ".imap": "InstrumentContext",
                ".rmap": "ReferenceMapping"}


def __getattr__(name: str):
    """Lend crds's ``MappingError`` and ``ChecksumError``, importing crds only then."""
    if name in _CRDS_EXCEPTIONS:
        from crds.core import exceptions

        return getattr(exceptions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _mapping_class(name: str):
    """Return crds's class for a mapping file name (``.pmap``, ``.imap`` or ``.rmap``)."""
    from crds.core import rmap

    return getattr(rmap, _CLASS_NAMES[os.path.splitext(name)[1]])


@functools.cache
def crds_version() -> str:
    """Return the installed crds's version, from its metadata (crds is not imported)."""
    return importlib.metadata.version("crds")


def install_observatory():
    """Make ``ligeriri`` a crds observatory in this process (idempotent); return the package.

    The ``.pth`` hook has normally done this at start-up; calling it again costs nothing
    and covers interpreters started without site-packages processing.
    """
    import _ligeriri_crds_hook

    fresh = "crds.ligeriri" not in sys.modules
    _ligeriri_crds_hook.install()
    from crds.core import utils

    package = importlib.import_module("crds.ligeriri")
    if fresh:
        utils.clear_function_caches()
    return package


def observatory_package():
    """Return ``crds.ligeriri`` (the observatory package as crds sees it)."""
    return install_observatory()


def locator():
    """Return ``crds.ligeriri.locate``, the naming and header policy crds calls."""
    install_observatory()
    return importlib.import_module("crds.ligeriri.locate")


def file_properties(name: str) -> tuple[str, str]:
    """Return (instrument, filekind) of a mapping or reference name, by crds's rules.

    Raises
    ------
    ValueError
        crds's observatory rules do not accept the name.
    """
    from crds.core import exceptions, utils

    if not isinstance(name, str) or not _SAFE_FILE_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a ligeriri reference or mapping name (letters, "
                         "digits, '_', '-' and '.' only)")
    try:
        return tuple(utils.get_file_properties(OBSERVATORY, name))
    except (AssertionError, exceptions.CrdsError, KeyError) as error:
        raise ValueError(f"{name!r} is not a ligeriri reference or mapping name ({error})") \
            from None


def with_checksum(text: str, name: str) -> str:
    """Return mapping ``text`` as crds writes it, with its sha1sum (crds's own rewrite).

    This is what ``crds checksum`` does to a mapping file (``Mapping.rewrite_checksum``),
    so ``crds checksum`` of a mapping we wrote changes nothing.
    """
    install_observatory()
    mapping = _mapping_class(name).from_string(text, name, ignore_checksum=True)
    with tempfile.TemporaryDirectory(prefix="dqref-mapping-") as folder:
        path = os.path.join(folder, name)
        mapping.rewrite_checksum(path)
        return Path(path).read_text()


def parse_mapping(text: str, name: str):
    """Parse mapping ``text`` with crds, verifying syntax, safety and checksum.

    Parameters
    ----------
    text : str
        The rendered mapping.
    name : str
        Its file name (``.pmap``, ``.imap`` or ``.rmap`` decides the class).

    Returns
    -------
    crds Mapping
        The loaded mapping; a ReferenceMapping is also validated against the type
        constraints (``tpns/``).

    Raises
    ------
    MappingError, ChecksumError
        crds refused the text.
    """
    from crds.core import rmap

    install_observatory()
    with _crds_exceptions_as_mapping_errors(name):
        mapping = _mapping_class(name).from_string(text, name)
    if isinstance(mapping, rmap.ReferenceMapping):
        with _crds_exceptions_as_mapping_errors(name):
            mapping.validate()
    return mapping


def load_context(mapping_dir: str | os.PathLike, context: str):
    """Load a pmap and every mapping it names from ``mapping_dir`` (checksums verified).

    Returns
    -------
    crds PipelineContext
        Fully loaded (all imaps and rmaps read now, not lazily).
    """
    install_observatory()
    from crds.core import exceptions, rmap

    if not context.endswith(".pmap"):
        raise exceptions.MappingError(f"{context}: not a pipeline context (.pmap)")
    with _crds_exceptions_as_mapping_errors(context):
        pipeline = rmap.load_mapping(context, path=os.fspath(mapping_dir))
        pipeline.force_load()
    return pipeline


def read_mapping_text(path: str | os.PathLike) -> str:
    """Return the text of a mapping file; crds reads mappings as UTF-8.

    Raises
    ------
    MappingError
        The bytes are not UTF-8 (the message names the file and the first bad byte).
    """
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        from crds.core import exceptions

        raise exceptions.MappingError(_not_utf8(path, error)) from None


def best_reference(pipeline, header: Mapping[str, object]) -> str:
    """Return crds's best ``dq`` reference for ``header`` under a loaded pipeline context.

    Parameters
    ----------
    pipeline : crds PipelineContext
        From `load_context`.
    header : mapping
        FITS keywords (INSTRUME, DETECTOR, SUBARRAY, DATE-OBS, TIME-OBS) or stpipe-style
        keys (META.INSTRUMENT.NAME, ...), or a mix.

    Returns
    -------
    str
        The reference basename, or crds's ``"NOT FOUND ..."`` text when no rule applies.
    """
    from crds.core import utils

    # the same steps as crds's hv_best_references (getrecommendations, stpipe): condition,
    # then minimize_header, which calls our locate.fits_to_parkeys (synonyms, observation
    # start, canonical detector names)
    conditioned = utils.condition_header(dict(header))
    minimal = pipeline.minimize_header(conditioned)
    result = pipeline.get_best_references(minimal, include=[REFTYPE])
    return str(result.get(REFTYPE, "NOT FOUND n/a"))


def reference_names(pipeline) -> list[str]:
    """Return every reference file named by a loaded context."""
    return sorted(pipeline.reference_names())


def mapping_names(pipeline) -> list[str]:
    """Return every mapping file named by a loaded context (itself included)."""
    return sorted(pipeline.mapping_names())


def imap_names(pipeline) -> dict[str, str]:
    """Return ``{INSTRUMENT: imap basename}`` of a loaded context."""
    return {str(key).upper(): imap.basename for key, imap in pipeline.selections.items()}


def imap_selections(pipeline, instrument: str) -> dict[str, str]:
    """Return ``{filekind: rmap basename or 'N/A'}`` of an instrument's imap, dq excluded.

    `LocalCache.add` carries these into each new imap, so the filekinds dqref does not
    manage (dark, flat, ... of an adopted cache) keep their rules.
    """
    imap = pipeline.get_imap(instrument.lower())
    others = {}
    for filekind, selected in imap.selections.items():
        if filekind.lower() == REFTYPE:
            continue
        others[filekind.lower()] = getattr(selected, "basename", None) or str(selected)
    return others


def rmap_selections(pipeline, instrument: str) -> dict:
    """Return ``{(detector, subarray): {useafter: reference}}`` of an instrument's dq rmap.

    The rmap's ``substitutions`` (the team's ``GENERIC -> N/A`` for the subarray) are
    applied to the match values, as crds applies them when it matches, so the rules mean
    the same once dqref renders them again without that header field.
    """
    reference_mapping = pipeline.get_imap(instrument.lower()).get_rmap(REFTYPE)
    substitutions = reference_mapping.header.get("substitutions", None) or {}
    keys = [key.upper() for key in reference_mapping.parkey[0]]
    rules = {}
    for match_key, useafter in reference_mapping.selector.todict()["selections"]:
        values = tuple(
            substitutions.get(key, {}).get(value, value) if key in substitutions else value
            for key, value in zip(keys, match_key, strict=False))
        dates = dict(useafter["selections"]) if isinstance(useafter, dict) else dict(useafter)
        rules.setdefault(values, {}).update(dates)
    return rules


# -- the cache's configuration files (crds's formats) ------------------------------------------
def read_server_config(config_dir: str | os.PathLike) -> dict:
    """Return the ``server_config`` of a cache's ``config/ligeriri`` folder (a Python literal).

    Raises
    ------
    FileNotFoundError, ValueError
        Missing, or not crds's format (``ValueError`` names the cause).
    """
    text = (Path(config_dir) / "server_config").read_text()
    try:
        info = ast.literal_eval(text)
    except (ValueError, SyntaxError) as error:
        raise ValueError(f"not a Python literal ({error})") from None
    if not isinstance(info, dict):
        raise ValueError("not a dict")
    return info


def operational_context(config_dir: str | os.PathLike) -> str:
    """Return the pmap a cache's ``server_config`` names as operational."""
    info = read_server_config(config_dir)
    try:
        return str(info["operational_context"])
    except KeyError:
        raise ValueError("no 'operational_context'") from None


def server_config_text(context: str, mappings: Sequence[str], version: str) -> str:
    """Return the text of a serverless ``server_config`` making ``context`` current."""
    info = {
        "observatory": OBSERVATORY,
        "operational_context": context,
        "latest_context": context,
        "edit_context": context,
        "bad_files": "",
        "bad_files_list": [],
        "force_remote_mode": False,
        "connected": False,
        "mappings": list(mappings),
        "last_synced": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "status": "local",
        "crds_version": {"str": version},
    }
    return pprint.pformat(info) + "\n"


def config_files(subdir_mode: str = SUBDIR_MODE) -> dict[str, str]:
    """Return the other files crds reads from ``config/ligeriri``: name -> text."""
    return {"ref_cache_subdir_mode": subdir_mode}


# -- checks other packages register ----------------------------------------------------------
def reference_checks() -> list[Callable]:
    """Return the reference checks registered under the ``ligeriri_dq.reference_checks`` group.

    Each is ``check(model: DQModel, path: Path) -> list[Finding]``; ligeriri-dq registers
    ``dqinit.roundtrip:roundtrip_findings`` there. dqref runs them without importing the
    packages that provide them by name (data flows one way: dqinit uses dqref).
    """
    checks = []
    for entry in sorted(importlib.metadata.entry_points(group=CHECKS_GROUP),
                        key=lambda e: e.name):
        checks.append(entry.load())
    return checks


@contextlib.contextmanager
def crds_environment(cache_path: str | os.PathLike) -> Iterator[None]:
    """Point crds's environment at a local cache (local mode, no server) for a block.

    crds reads its configuration from environment variables and memoises it; this sets
    CRDS_PATH, CRDS_MODE=local, CRDS_OBSERVATORY and a serverless CRDS_SERVER_URL, clears
    the memo, and restores everything afterwards.
    """
    from crds.core import utils

    install_observatory()
    settings = {
        "CRDS_PATH": os.fspath(cache_path),
        "CRDS_MODE": "local",
        "CRDS_OBSERVATORY": OBSERVATORY,
        "CRDS_SERVER_URL": f"https://{OBSERVATORY}-serverless-mode.invalid",
    }
    with _environment_lock:
        saved = {key: os.environ.get(key) for key in settings}
        os.environ.update(settings)
        utils.clear_function_caches()
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            utils.clear_function_caches()


def getrecommendations(cache_path: str | os.PathLike, header: Mapping[str, object],
                       context: str | None = None) -> str:
    """Ask crds's public ``getrecommendations`` for the dq reference, in local mode.

    This is the path a JWST-style pipeline takes (``crds.getrecommendations(header,
    reftypes=['dq'], observatory='ligeriri')``); `LocalCache.bestref` uses the faster
    `best_reference` on a loaded context, and the tests check that both agree.
    """
    import crds

    with crds_environment(cache_path):
        result = crds.getrecommendations(dict(header), reftypes=[REFTYPE], context=context,
                                         observatory=OBSERVATORY)
    return str(result.get(REFTYPE, "NOT FOUND n/a"))


# -- crds certify, and the errors crds logs instead of raising -------------------------------
@contextlib.contextmanager
def captured_crds_errors() -> Iterator[list[str]]:
    """Collect, one line each, the ERROR messages crds logs in the block (not printed).

    crds reports many problems (an impossible UseAfter date, a certify finding) by logging
    an error and carrying on; ``crds certify`` counts them. Its console output is held
    back meanwhile, so the caller decides what the user sees.
    """
    from crds.core import log

    messages: list[str] = []

    class _Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(" ".join(record.getMessage().split()))

    collector = _Collector(logging.ERROR)
    console = log.THE_LOGGER.console
    level = console.level if console is not None else None
    log.THE_LOGGER.logger.addHandler(collector)
    if console is not None:
        console.setLevel(logging.CRITICAL + 1)
    try:
        yield messages
    finally:
        log.THE_LOGGER.logger.removeHandler(collector)
        if console is not None:
            console.setLevel(level)


def certify_mappings(cache_path: str | os.PathLike, paths: Iterable[str | os.PathLike],
                     context: str | None = None) -> dict[Path, list[str]]:
    """Run crds's own certify on each mapping file; return the errors it logs for each.

    This is what ``crds certify FILE --comparison-context CONTEXT`` checks (syntax,
    duplicate keys, UseAfter dates and other selector values, the type constraints of
    ``tpns/``, and, against ``context``, the differences from the mapping it replaces),
    in local mode on the cache at ``cache_path``.

    Returns
    -------
    dict
        ``{path: [error message, ...]}``, an empty list for a mapping crds finds no fault in.
    """
    install_observatory()
    from crds.certify import certify

    found: dict[Path, list[str]] = {}
    with crds_environment(cache_path):
        for path in paths:
            with captured_crds_errors() as errors:
                certify.certify_file(os.fspath(path), context)
            found[Path(path)] = errors
    return found


@contextlib.contextmanager
def _crds_exceptions_as_mapping_errors(name: str) -> Iterator[None]:
    from crds.core import exceptions

    try:
        yield
    except UnicodeDecodeError as error:
        path = _file_crds_was_reading(error) or name
        raise exceptions.MappingError(_not_utf8(path, error)) from None
    except (exceptions.CrdsError, AssertionError, SyntaxError, KeyError, OSError) as error:
        if isinstance(error, exceptions.MappingError | exceptions.ChecksumError |
                      FileNotFoundError):
            raise
        raise exceptions.MappingError(f"{name}: {error}") from error


def _not_utf8(path, error: UnicodeDecodeError) -> str:
    return f"{path}: not UTF-8 text ({error.reason} at byte {error.start})"


def _file_crds_was_reading(error: BaseException) -> str | None:
    """Return the mapping file crds was reading when ``error`` was raised, if known.

    crds's ``Mapping.from_file(basename, path=...)`` holds the file's path in its local
    ``filename`` (pinned by ``tests/test_hostile_cache.py``); the innermost such frame is
    the file that failed, which may be a child of the context being loaded.
    """
    found = None
    for frame, _ in traceback.walk_tb(error.__traceback__):
        if frame.f_code.co_name == "from_file" and \
                isinstance(frame.f_locals.get("filename"), str):
            found = frame.f_locals["filename"]
    return found


# -- reading hand-made caches (dqref cache adopt) ----------------------------------------------
def read_mapping_leniently(path: str | os.PathLike) -> tuple[dict, object]:
    """Return (header, selector) of a mapping file without verifying its checksum.

    Uses crds's own mapping grammar (``crds.certify.mapping_parser``); a pmap's or imap's
    selector comes back as a dict, an rmap's as a crds ReferenceMapping (not loaded
    further). Raises `MappingError` when crds cannot parse it at all.
    """
    from crds.core import rmap

    install_observatory()
    from crds.certify import mapping_parser

    path = Path(path)
    with _crds_exceptions_as_mapping_errors(path.name):
        if path.suffix == ".rmap":
            mapping = rmap.ReferenceMapping.from_string(read_mapping_text(path), path.name,
                                                        ignore_checksum=True)
            return dict(mapping.header), mapping
        read_mapping_text(path)  # crds's parser reads it again; this names a non-UTF-8 file
        parsing = mapping_parser.parse_mapping(str(path))
        return dict(parsing.header), dict(parsing.selector)


def checksum_problem(path: str | os.PathLike) -> str | None:
    """Return why crds refuses the sha1sum of a mapping file, or None when it is right.

    The file is parsed by crds with its checksum verified (a context's children are not
    loaded), which is what ``crds checksum --verify`` does.
    """
    from crds.core import exceptions

    install_observatory()
    path = Path(path)
    try:
        _mapping_class(path.name).from_string(read_mapping_text(path), path.name,
                                              ignore_checksum=False)
    except exceptions.ChecksumError as error:
        return str(error)
    except (exceptions.CrdsError, AssertionError, SyntaxError, ValueError, KeyError):
        return None  # not a checksum problem; read_mapping_leniently reports it
    return None


def rewrite_rmap(mapping, name: str, derived_from: str) -> str:
    """Return the text of rmap ``mapping`` renamed ``name``, with a correct checksum.

    Every rule (match tuples, selectors, substitutions) is kept; ``ignore_checksum`` is
    dropped. crds writes the text (``Mapping.write``), as ``crds checksum`` would.
    """
    copy = mapping.copy() if hasattr(mapping, "copy") else mapping
    header = copy.header
    header["name"] = name
    header["derived_from"] = derived_from
    header.pop("ignore_checksum", None)
    with tempfile.TemporaryDirectory(prefix="dqref-mapping-") as folder:
        path = os.path.join(folder, name)
        copy.write(path)
        text = Path(path).read_text()
    parse_mapping(text, name)  # it must load, checksum and type constraints included
    return text
