"""Derive bad-pixel flags from flats and darks (`dqref derive`).

The numpy core (`derive_flags`) takes arrays and returns a DQ array; `derive_reference`
reads FITS slope files around it and returns a `DQModel` with its provenance in HISTORY.
docs/derive.md describes the rules and their settings (``defaults.toml``).
"""

from dqref.derive.api import DerivationSummary, derive_reference
from dqref.derive.config import DeriveConfig, DeriveConfigError
from dqref.derive.core import DerivationResult, derive_flags
from dqref.derive.inputs import DeriveInputError

__all__ = ["DerivationResult", "DerivationSummary", "DeriveConfig", "DeriveConfigError",
           "DeriveInputError", "derive_flags", "derive_reference"]
