"""The ASDF tree that stdatamodels keeps inside a FITS file, read and rewritten.

stdatamodels stores a model's tree in a last ``ASDF`` binary table (one row, one byte
column ``ASDF_METADATA``). Arrays in the tree point at FITS HDUs (``source: fits:DQ,1``)
and ``_fits_hash`` is the SHA-256 of every other HDU's header text: when it matches the
file, stdatamodels trusts the tree and ignores the FITS keywords. A step that changes
headers must therefore change the tree the same way and store the new hash; this module
does that with the ``asdf`` library, keeping every node it does not know as it is.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping

import asdf
import numpy as np
from asdf import tagged
from astropy.io import fits

from dqinit.errors import RampFormatError

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
    try:
        with asdf.open(io.BytesIO(raw[:length]), _force_raw_types=True,
                       lazy_load=False) as stored:
            return {key: value for key, value in stored.tree.items()
                    if key not in _WRITER_NODES}
    except Exception as error:  # asdf raises many kinds for a damaged tree
        raise RampFormatError(f"{path}: the {EXTENSION} extension holds no readable ASDF "
                              f"tree ({type(error).__name__}: {error})") from None


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
    return tagged.TaggedDict({"source": f"fits:{extname},1", "datatype": np.dtype(dtype).name,
                              "byteorder": "big", "shape": list(shape)}, _NDARRAY_TAG)


def fits_hash(headers: Iterable[fits.Header]) -> str:
    """Return stdatamodels's ``_fits_hash`` of the non-ASDF headers, in file order."""
    return hashlib.sha256("".join(str(header) for header in headers).encode()).hexdigest()


def tree_hdu(tree: Mapping) -> tuple[fits.Header, bytes]:
    """Return the header and unpadded data of an ``ASDF`` table holding ``tree``."""
    buffer = io.BytesIO()
    asdf.AsdfFile(dict(tree)).write_to(buffer)
    data = buffer.getvalue()
    header = fits.Header([
        ("XTENSION", "BINTABLE"), ("BITPIX", 8), ("NAXIS", 2), ("NAXIS1", len(data)),
        ("NAXIS2", 1), ("PCOUNT", 0), ("GCOUNT", 1), ("TFIELDS", 1),
        ("TTYPE1", COLUMN), ("TFORM1", f"{len(data)}B"), ("EXTNAME", EXTENSION)])
    return header, data
