"""Compare two masks: what changed since the reference in use (numpy core + model checks).

A pixel that goes from DEAD to DEAD|DO_NOT_USE has *gained DO_NOT_USE*; it is not newly
bad. "Newly bad" means no flag before and some flag now; "newly good" the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dqref import flags
from dqref.errors import DQRefError
from dqref.model import DQModel


class MaskMismatchError(DQRefError, ValueError):
    """The two masks cover different detectors or geometries."""


@dataclass(frozen=True)
class FlagChange:
    """Pixel counts for one flag: gained (absent before), lost, unchanged (set in both)."""

    gained: int
    lost: int
    unchanged: int


@dataclass(frozen=True)
class MaskDiff:
    """The difference of two masks of one shape."""

    shape: tuple[int, int]
    changed_pixels: int
    newly_bad: int
    newly_good: int
    per_flag: dict[str, FlagChange] = field(default_factory=dict)
    changed_indices: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64),
                                        repr=False)
    old_values: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint32), repr=False)
    new_values: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint32), repr=False)

    def changes(self, limit: int) -> list[tuple[int, int, int, int]]:
        """Return up to ``limit`` changed pixels as (y, x, old value, new value), row order."""
        rows, columns = np.unravel_index(self.changed_indices[:limit], self.shape)
        return [(int(y), int(x), int(o), int(n)) for y, x, o, n in
                zip(rows, columns, self.old_values[:limit], self.new_values[:limit],
                    strict=True)]

    def to_dict(self, limit: int = 0) -> dict:
        """Return a JSON-ready summary; ``limit`` changed pixels listed by flag names."""
        return {
            "shape": list(self.shape),
            "changed_pixels": self.changed_pixels,
            "newly_bad": self.newly_bad,
            "newly_good": self.newly_good,
            "flags": {name: vars(change) for name, change in self.per_flag.items()
                      if change.gained or change.lost or change.unchanged},
            "changes": [{"y": y, "x": x, "old": flags.names(old), "new": flags.names(new)}
                        for y, x, old, new in self.changes(limit)],
        }

    def format_report(self, limit: int = 0) -> str:
        """Return a readable report; ``limit`` changed pixels listed by flag names."""
        lines = [f"changed pixels: {self.changed_pixels}   newly bad: {self.newly_bad}   "
                 f"newly good: {self.newly_good}",
                 f"{'flag':<18} {'gained':>9} {'lost':>9} {'unchanged':>10}"]
        for name, change in self.per_flag.items():
            if change.gained or change.lost or change.unchanged:
                lines.append(f"{name:<18} {change.gained:>9} {change.lost:>9} "
                             f"{change.unchanged:>10}")
        for y, x, old, new in self.changes(limit):
            lines.append(f"(y={y}, x={x}): {'|'.join(flags.names(old))} -> "
                         f"{'|'.join(flags.names(new))}")
        return "\n".join(lines)


def compare_masks(old: np.ndarray, new: np.ndarray) -> MaskDiff:
    """Compare two uint32 masks of one shape, working only on the changed pixels.

    Raises
    ------
    MaskMismatchError
        The shapes differ.
    """
    if old.shape != new.shape:
        raise MaskMismatchError(f"masks differ in shape: {old.shape} vs {new.shape}")
    changed = np.flatnonzero(old != new)
    old_values = old.ravel()[changed].astype(np.uint32)
    new_values = new.ravel()[changed].astype(np.uint32)
    per_flag = {}
    for flag in flags.FLAGS:
        bit = np.uint32(flag.value)
        before, after = (old_values & bit) != 0, (new_values & bit) != 0
        per_flag[flag.name] = FlagChange(int(np.count_nonzero(after & ~before)),
                                         int(np.count_nonzero(before & ~after)), 0)
    unchanged = _per_bit_counts(old & new)
    per_flag = {name: FlagChange(c.gained, c.lost, unchanged[name])
                for name, c in per_flag.items()}
    return MaskDiff(old.shape, int(changed.size),
                    int(np.count_nonzero((old_values == 0) & (new_values != 0))),
                    int(np.count_nonzero((old_values != 0) & (new_values == 0))),
                    per_flag, changed, old_values, new_values)


def _per_bit_counts(both: np.ndarray) -> dict[str, int]:
    from dqref.histogram import flag_histogram

    return flag_histogram(both).flags


def diff_references(new: DQModel, old: DQModel) -> MaskDiff:
    """Compare two references of the same detector and geometry, in standard bits.

    Raises
    ------
    MaskMismatchError
        Instrument, detector, subarray origin or shape differ (both geometries named).
    """
    def geometry(model):
        sub = model.meta.subarray
        return (str(model.meta.name).upper(), str(model.meta.detector).upper(),
                sub.xstart, sub.ystart, model.dq.shape)

    if geometry(new) != geometry(old):
        names = ("instrument", "detector", "SUBSTRT1", "SUBSTRT2", "shape")

        def describe(model):
            return ", ".join(f"{n}={v}" for n, v in zip(names, geometry(model), strict=True))

        raise MaskMismatchError(f"the masks do not cover the same pixels: new ({describe(new)}) "
                                f"vs old ({describe(old)})")
    return compare_masks(_standard(old), _standard(new))


def _standard(model: DQModel) -> np.ndarray:
    return flags.translate(model.dq, flags.translation_table(model.dq_def))
