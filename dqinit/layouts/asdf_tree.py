"""The ASDF tree that stdatamodels keeps inside a FITS file, read and rewritten.

stdatamodels stores a model's tree in a last ``ASDF`` binary table (one row, one byte
column ``ASDF_METADATA``). Arrays in the tree point at FITS HDUs (``source: fits:DQ,1``)
and ``_fits_hash`` is the SHA-256 of every other HDU's header text: when it matches the
file, stdatamodels trusts the tree and ignores the FITS keywords. A step that changes
headers must therefore change the tree the same way and store the new hash; this module
does that with the ``asdf`` library, keeping every node it does not know as it is.

asdf is imported on first use, and it works here with its own core extensions only
(`core_extensions_only`): the tree holds core tags alone, and building asdf's default list
imports every installed asdf plugin (asdf-astropy, gwcs, stdatamodels), measured 1.1 to
2.4 s on 2 cores, for nothing. The bytes written are the same: the tree's ``history``
records the core extension either way (pinned by tests/test_ramp_layout.py).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

import numpy as np
from astropy.io import fits

from dqinit.errors import RampFormatError

if TYPE_CHECKING:
    from asdf import tagged

EXTENSION = "ASDF"
COLUMN = "ASDF_METADATA"
HASH_KEY = "_fits_hash"
_NDARRAY_TAG = "tag:stsci.edu:asdf/core/ndarray-1.1.0"
_WRITER_NODES = ("asdf_library", "history")  # the asdf library writes its own


def read_tree(path, hdu) -> dict:
    """Return the tree stored in the ``ASDF`` HDU of ``path``, tags kept as they are."""
    raw = np.fromfile(path, dtype=np.uint8, count=hdu.data_span,
                      offset=hdu.data_offset).tobytes()
    length = int(hdu.header.get("NAXIS1", 0)) * int(hdu.header.get("NAXIS2", 0))
    import asdf

    try:
        with core_extensions_only(), asdf.open(io.BytesIO(raw[:length]), _force_raw_types=True,
                       lazy_load=False) as stored:
            return {key: value for key, value in stored.tree.items()
                    if key not in _WRITER_NODES}
    except Exception as error:  # asdf raises many kinds for a damaged tree
        raise RampFormatError(f"{path}: the {EXTENSION} extension holds no readable ASDF "
                              f"tree ({type(error).__name__}: {' '.join(str(error).split())})"
                              ) from None  # a YAML parser's message spans several lines


def set_path(tree: dict, dotted: str, value) -> None:
    """Set ``tree['a']['b']['c'] = value`` for ``'a.b.c'``, creating dicts on the way."""
    *parents, leaf = dotted.split(".")
    node = tree
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    node[leaf] = value


def array_node(extname: str, shape: tuple[int, ...], dtype) -> tagged.TaggedDict:
    """Return an ndarray node that points at FITS extension ``extname`` (EXTVER 1)."""
    from asdf import tagged

    return tagged.TaggedDict({"source": f"fits:{extname},1", "datatype": np.dtype(dtype).name,
                              "byteorder": "big", "shape": list(shape)}, _NDARRAY_TAG)


def fits_hash(headers: Iterable[fits.Header]) -> str:
    """Return stdatamodels's ``_fits_hash`` of the non-ASDF headers, in file order."""
    return hashlib.sha256("".join(str(header) for header in headers).encode()).hexdigest()


def tree_hdu(tree: Mapping) -> tuple[fits.Header, bytes]:
    """Return the header and unpadded data of an ``ASDF`` table holding ``tree``."""
    import asdf

    buffer = io.BytesIO()
    with core_extensions_only():
        asdf.AsdfFile(dict(tree)).write_to(buffer)
    data = buffer.getvalue()
    header = fits.Header([
        ("XTENSION", "BINTABLE"), ("BITPIX", 8), ("NAXIS", 2), ("NAXIS1", len(data)),
        ("NAXIS2", 1), ("PCOUNT", 0), ("GCOUNT", 1), ("TFIELDS", 1),
        ("TTYPE1", COLUMN), ("TFORM1", f"{len(data)}B"), ("EXTNAME", EXTENSION)])
    return header, data


@contextlib.contextmanager
def core_extensions_only() -> Iterator[None]:
    """Run asdf with the extensions and schemas of asdf and asdf-standard only.

    asdf's configuration has no public way to set these lists (adding to one loads every
    plugin first), so the lists of this temporary configuration are set directly; should
    asdf rename them, it falls back to its default lists (slower, the same bytes).
    """
    import asdf

    with asdf.config_context() as config:
        config._resource_mappings = _core_entry_points("asdf.resource_mappings")
        config._resource_manager = None
        config._extensions = _core_entry_points("asdf.extensions")
        yield


#: The packages whose asdf entry points the tree needs: the core tags and their schemas.
_CORE_PACKAGES = ("asdf", "asdf_standard", "asdf-standard")


@functools.cache
def _core_entry_points(group: str) -> list:
    """The core packages' entry points of ``group``, wrapped as asdf wraps them."""
    from asdf.extension import ExtensionProxy
    from asdf.resource import ResourceMappingProxy

    proxy = ExtensionProxy if group == "asdf.extensions" else ResourceMappingProxy
    proxies, seen = [], set()
    for point in entry_points(group=group):
        if point.dist.name not in _CORE_PACKAGES or point.value in seen:
            continue  # Python 3.11 can list an entry point twice
        seen.add(point.value)
        elements = point.load()()
        for element in elements if isinstance(elements, list) else [elements]:
            proxies.append(proxy(element, package_name=point.dist.name,
                                 package_version=point.dist.version))
    return proxies
