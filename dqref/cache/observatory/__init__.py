"""The ``ligeriri`` CRDS observatory package (IRIS at TMT, Liger at Keck).

Modelled on crds's own observatory packages (``crds/tobs``, ``crds/jwst``): type specs
in ``specs/``, certify constraints in ``tpns/``, naming and location policy in
``locate.py``, one (empty) plugin module per instrument. `dqref.cache.crds_adapter`
installs it into crds as ``crds.ligeriri``; nothing else imports it directly.
"""

import os.path

from crds.core import reftypes

HERE = os.path.dirname(__file__) or "."

TYPES = reftypes.from_package_file("ligeriri", __file__)

OBSERVATORY = TYPES.observatory
INSTRUMENTS = TYPES.instruments
EXTENSIONS = TYPES.extensions
TEXT_DESCR = TYPES.text_descr
FILEKINDS = TYPES.filekinds

INSTRUMENT_FIXERS = {}

TYPE_FIXERS = {}

PROVENANCE_KEYWORDS = ("META.DESCRIPTION", "META.PEDIGREE", "META.USEAFTER", "META.HISTORY",
                       "META.AUTHOR")
USEAFTER_KEYWORDS = ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME")

DEFAULT_SELECTORS = ("Match", "UseAfter")
