"""Per-flag pixel counts of a DQ array (numpy only).

Each bit is counted separately, so a pixel flagged ``DEAD|DO_NOT_USE`` counts once under
DEAD and once under DO_NOT_USE.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dqref import flags

# Above this fraction of flagged pixels, counting bits directly beats sorting the values.
_DENSE_FRACTION = 0.05


@dataclass(frozen=True)
class FlagHistogram:
    """Pixel counts: ``total`` pixels, ``good`` (no bit set) and per flag name."""

    total: int
    good: int
    flags: dict[str, int] = field(default_factory=dict)

    @property
    def flagged(self) -> int:
        return self.total - self.good

    def to_dict(self) -> dict:
        """Return ``{"total", "good", "flags": {name: count}}`` (all 32 flags listed)."""
        return {"total": self.total, "good": self.good, "flags": dict(self.flags)}

    def nonzero(self) -> dict[str, int]:
        """Return only the flags that occur."""
        return {name: count for name, count in self.flags.items() if count}

    def format_table(self) -> str:
        """Return a plain-text table of the flags that occur, with totals."""
        width = max([len(n) for n in self.nonzero()] + [len("flagged (any bit)")])
        lines = [f"{'flag':<{width}}  {'value':>10}  {'pixels':>10}  {'percent':>8}"]
        for name, count in self.nonzero().items():
            lines.append(
                f"{name:<{width}}  {flags.PIXEL[name]:>10}  {count:>10}  "
                f"{100 * count / self.total:>7.4f}%"
            )
        lines.append(f"{'good (no flag)':<{width}}  {0:>10}  {self.good:>10}  "
                     f"{100 * self.good / self.total:>7.4f}%")
        lines.append(f"{'flagged (any bit)':<{width}}  {'':>10}  {self.flagged:>10}  "
                     f"{100 * self.flagged / self.total:>7.4f}%")
        lines.append(f"{'total':<{width}}  {'':>10}  {self.total:>10}")
        return "\n".join(lines)


def flag_histogram(dq: np.ndarray) -> FlagHistogram:
    """Count the pixels carrying each flag.

    Parameters
    ----------
    dq : numpy.ndarray of unsigned integers
        A DQ array of any shape. It is not modified.

    Returns
    -------
    FlagHistogram
        Total pixels, good (zero) pixels, and for each of the 32 flags the number of
        pixels with that bit set.
    """
    dq = np.asarray(dq)
    flagged = dq[dq != 0]
    per_bit = np.zeros(32, dtype=np.int64)
    if flagged.size <= _DENSE_FRACTION * dq.size:
        # Few flagged pixels with few distinct values: count each distinct value once.
        distinct, counts = np.unique(flagged, return_counts=True)
        bits = (distinct[:, None].astype(np.uint64) >> np.arange(32, dtype=np.uint64)) & 1
        per_bit = (bits * counts[:, None]).sum(axis=0)
    else:
        for bit in range(min(32, 8 * dq.dtype.itemsize)):  # narrow arrays have fewer bits
            per_bit[bit] = np.count_nonzero(flagged & dq.dtype.type(1 << bit))
    counts_by_name = {f.name: int(per_bit[f.bit]) for f in flags.FLAGS}
    return FlagHistogram(total=int(dq.size), good=int(dq.size - flagged.size), flags=counts_by_name)
