"""The only module that touches crds internals.

crds has no plugin interface for new observatories, so we install our observatory package
(`dqref.cache.observatory`) as ``crds.ligeriri`` and add ``ligeriri`` to crds's observatory
list, the way crds's own packages are found. Everything else in dqref talks to the small
API below. ``tests/test_crds_adapter.py`` pins every crds behaviour we rely on, so a crds
upgrade that breaks one fails loudly; pyproject.toml bounds crds to the tested series.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Iterator, Mapping

import crds
from crds.core import constants, exceptions, rmap, utils

OBSERVATORY = "ligeriri"
REFTYPE = "dq"
_PACKAGE = "dqref.cache.observatory"
_SUBMODULES = ("locate", "iris", "liger")
_environment_lock = threading.RLock()

#: crds raises these for malformed, unparsable or tampered mappings.
MappingError = exceptions.MappingError
ChecksumError = exceptions.ChecksumError


def install_observatory() -> None:
    """Make ``ligeriri`` a crds observatory (idempotent).

    Registers our package as ``crds.ligeriri`` (and its submodules), appends the name to
    ``crds.core.constants.ALL_OBSERVATORIES`` (the list crds modules share by reference)
    and clears crds's memoised look-ups that may have been computed without it.
    """
    if "ligeriri" in constants.ALL_OBSERVATORIES and f"crds.{OBSERVATORY}" in sys.modules:
        return
    package = importlib.import_module(_PACKAGE)
    sys.modules[f"crds.{OBSERVATORY}"] = package
    crds.ligeriri = package
    for name in _SUBMODULES:
        module = importlib.import_module(f"{_PACKAGE}.{name}")
        sys.modules[f"crds.{OBSERVATORY}.{name}"] = module
        setattr(package, name, module)
    if OBSERVATORY not in constants.ALL_OBSERVATORIES:
        constants.ALL_OBSERVATORIES.append(OBSERVATORY)
    utils.clear_function_caches()


def mapping_checksum(text: str) -> str:
    """Return the crds sha1sum of mapping ``text`` (computed over all but the sha1sum line)."""
    return rmap.Mapping._get_checksum(None, text)


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
    install_observatory()
    classes = {".pmap": rmap.PipelineContext, ".imap": rmap.InstrumentContext,
               ".rmap": rmap.ReferenceMapping}
    mapping = classes[os.path.splitext(name)[1]].from_string(text, name)
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
    with _crds_exceptions_as_mapping_errors(context):
        pipeline = rmap.load_mapping(context, path=os.fspath(mapping_dir))
        pipeline.force_load()
    return pipeline


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
    conditioned = utils.condition_header(pipeline.locate.cross_strap(header))
    minimal = pipeline.minimize_header(conditioned)
    result = pipeline.get_best_references(minimal, include=[REFTYPE])
    return str(result.get(REFTYPE, "NOT FOUND n/a"))


def reference_names(pipeline) -> list[str]:
    """Return every reference file named by a loaded context."""
    return sorted(pipeline.reference_names())


def mapping_names(pipeline) -> list[str]:
    """Return every mapping file named by a loaded context (itself included)."""
    return sorted(pipeline.mapping_names())


def rmap_selections(pipeline, instrument: str) -> dict:
    """Return ``{(detector, subarray): {useafter: reference}}`` of an instrument's dq rmap."""
    reference_mapping = pipeline.get_imap(instrument.lower()).get_rmap(REFTYPE)
    rules = {}
    for match_key, useafter in reference_mapping.selector.todict()["selections"]:
        rules[tuple(match_key)] = dict(useafter["selections"]) if isinstance(useafter, dict) \
            else dict(useafter)
    return rules


@contextlib.contextmanager
def crds_environment(cache_path: str | os.PathLike) -> Iterator[None]:
    """Point crds's environment at a local cache (local mode, no server) for a block.

    crds reads its configuration from environment variables and memoises it; this sets
    CRDS_PATH, CRDS_MODE=local, CRDS_OBSERVATORY and a serverless CRDS_SERVER_URL, clears
    the memo, and restores everything afterwards.
    """
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
    with crds_environment(cache_path):
        result = crds.getrecommendations(dict(header), reftypes=[REFTYPE], context=context,
                                         observatory=OBSERVATORY)
    return str(result.get(REFTYPE, "NOT FOUND n/a"))


@contextlib.contextmanager
def _crds_exceptions_as_mapping_errors(name: str) -> Iterator[None]:
    try:
        yield
    except (exceptions.CrdsError, AssertionError, SyntaxError, KeyError, OSError) as error:
        if isinstance(error, MappingError | ChecksumError | FileNotFoundError):
            raise
        raise MappingError(f"{name}: {error}") from error
