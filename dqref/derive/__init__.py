"""Derive bad-pixel flags from flats and darks (`dqref derive`).

The numpy core (`derive_flags`) takes arrays and returns a DQ array; `derive_reference`
reads FITS slope files around it and returns a `DQModel` with its provenance in HISTORY.
docs/derive.md describes the rules and their settings (``defaults.toml``). The names are
loaded on first use (`dqref.lazy`).
"""

from dqref.lazy import lazy_attributes

_EXPORTS = {"DerivationSummary": "dqref.derive.api", "derive_reference": "dqref.derive.api",
            "DeriveConfig": "dqref.derive.config", "DeriveConfigError": "dqref.derive.config",
            "DerivationResult": "dqref.derive.core", "derive_flags": "dqref.derive.core",
            "DeriveInputError": "dqref.derive.inputs"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_attributes(__name__, _EXPORTS, globals())
