"""Create a DQ reference from scratch: a blank full frame plus manual flags."""

from __future__ import annotations

import os

from dqref import __version__
from dqref.manual_flags import apply_manual_flags, read_manual_flags
from dqref.model import DQModel


def create_reference(instrument: str, detector: str, manual_flags: str | os.PathLike | None = None,
                     **meta) -> DQModel:
    """Return a full-frame reference for a detector, with manual flags ORed in.

    Parameters
    ----------
    instrument, detector : str
        Names from the detector table (``dqref/detectors.toml``).
    manual_flags : path-like, optional
        A flag list in the jwst_reffiles format (see `dqref.manual_flags`).
    **meta : str
        Other metadata: ``useafter``, ``pedigree``, ``description``, ``author``.
    """
    model = DQModel.blank(instrument, detector, **{k: v for k, v in meta.items() if v})
    model.meta.history.append(f"Created by dqref {__version__}")
    if manual_flags is not None:
        entries = read_manual_flags(manual_flags, model.shape)
        model.dq = apply_manual_flags(model.dq, entries)
        model.meta.history.append(f"Manual flags: {os.path.basename(manual_flags)} "
                                  f"({len(entries)} entries)")
    return model
