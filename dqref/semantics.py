"""Former home of the semantic validation rules; kept so that old imports keep working.

The rules (``dq-def-known-names`` ... ``flagged-fraction``) and their settings now live in
`dqref.validation`, in one place, where they read each mask through its own ``DQ_DEF``
(translated to the standard bits, as stdatamodels does when JWST opens a mask). This
module used to register a second, untranslated copy of them; import from
`dqref.validation` instead.
"""

from __future__ import annotations

from dqref.validation import ValidationConfig, ValidationConfigError

__all__ = ["ValidationConfig", "ValidationConfigError"]
