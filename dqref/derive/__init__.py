"""Derive bad-pixel flags from flats and darks (numpy core) and build a DQ reference."""

from dqref.derive.api import DerivationSummary, DeriveInputError, derive_reference
from dqref.derive.config import DeriveConfig, DeriveConfigError
from dqref.derive.core import DerivationResult, derive_flags

__all__ = ["DerivationResult", "DerivationSummary", "DeriveConfig", "DeriveConfigError",
           "DeriveInputError", "derive_flags", "derive_reference"]
