"""Pictures of masks (optional: needs matplotlib, ``pip install 'ligeriri-dq[plot]'``).

Masks are 4096 x 4096 with isolated bad pixels, so images are downsampled by
*max-pooling*: each output pixel shows the most significant flag in its block, and a
single dead pixel stays visible.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from dqref import flags
from dqref.errors import DQRefError, writing
from dqref.histogram import FlagHistogram

INSTALL_HINT = "plotting needs matplotlib: pip install 'ligeriri-dq[plot]'"


class PlottingUnavailableError(DQRefError):
    """matplotlib is not installed."""


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        raise PlottingUnavailableError(INSTALL_HINT) from None
    return pyplot


def _save(pyplot, figure, out_png: str | os.PathLike, dpi: int) -> None:
    """Write the figure to ``out_png``; a failed write (a full disk) names ``out_png``.

    The picture is rendered in memory and written by us: matplotlib's own writer loses
    the error of a full disk (``savefig('/dev/full')`` returns as if it had succeeded).
    """
    try:
        figure.tight_layout()
        image = io.BytesIO()
        figure.savefig(image, dpi=dpi, bbox_inches="tight",
                       format=Path(out_png).suffix.lstrip(".").lower() or "png")
    finally:
        pyplot.close(figure)
    with writing(out_png), open(out_png, "wb") as stream:
        stream.write(image.getbuffer())


def highest_flag(dq: np.ndarray) -> np.ndarray:
    """Return, per pixel, the bit number of its highest flag plus one (0 for good)."""
    result = np.zeros(dq.shape, np.uint8)
    for flag in flags.FLAGS:
        result[(dq & np.uint32(flag.value)) != 0] = flag.bit + 1
    return result


def _blocks(image: np.ndarray, max_pixels: int) -> np.ndarray:
    factor = max(1, int(np.ceil(max(image.shape) / max_pixels)))
    rows, columns = (-(-s // factor) * factor for s in image.shape)
    padded = np.zeros((rows, columns), image.dtype)
    padded[:image.shape[0], :image.shape[1]] = image
    return padded.reshape(rows // factor, factor, columns // factor, factor)


def max_pool(image: np.ndarray, max_pixels: int) -> np.ndarray:
    """Downsample by the maximum of each block so that no side exceeds ``max_pixels``."""
    return _blocks(image, max_pixels).max(axis=(1, 3))


def or_pool(dq: np.ndarray, max_pixels: int) -> np.ndarray:
    """Downsample a mask by OR-ing each block: every flag in a block survives."""
    return np.bitwise_or.reduce(np.bitwise_or.reduce(_blocks(dq, max_pixels), axis=3), axis=1)


def plot_histogram(histogram: FlagHistogram, out_png: str | os.PathLike, title: str = "") -> None:
    """Bar chart of pixels per flag (log scale)."""
    pyplot = _pyplot()
    counts = histogram.nonzero()
    figure, axes = pyplot.subplots(figsize=(8, 4.5))
    axes.bar(list(counts), list(counts.values()), color="tab:red")
    axes.set_yscale("log")
    axes.set_ylabel("pixels")
    axes.set_title(title or f"{histogram.flagged} of {histogram.total} pixels flagged")
    axes.tick_params(axis="x", labelrotation=45)
    _save(pyplot, figure, out_png, dpi=100)


def plot_mask(dq: np.ndarray, out_png: str | os.PathLike, max_pixels: int = 512,
              title: str = "") -> None:
    """The mask as an image coloured by each block's highest flag, with a legend."""
    pyplot = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    # The highest flag of a block is the highest flag of the block's OR: pool first; then
    # draw each flagged block 3 wide so that a lone bad pixel is visible on screen.
    from scipy import ndimage

    pooled = ndimage.maximum_filter(highest_flag(or_pool(dq, max_pixels)), size=3)
    present = [f for f in flags.FLAGS if np.any(pooled == f.bit + 1)]
    palette = pyplot.get_cmap("tab20", max(len(present), 1))
    colours = np.zeros((33, 4))
    colours[0] = (1, 1, 1, 1)
    for index, flag in enumerate(present):
        colours[flag.bit + 1] = palette(index)
    figure, axes = pyplot.subplots(figsize=(8, 7))
    axes.imshow(pooled, cmap=ListedColormap(colours), vmin=0, vmax=32, origin="lower",
                interpolation="nearest", extent=(0, dq.shape[1], 0, dq.shape[0]))
    axes.set_xlabel("x (column)")
    axes.set_ylabel("y (row)")
    axes.set_title(title or f"{dq.shape[0]} x {dq.shape[1]} mask (max-pooled)")
    axes.legend(handles=[Patch(color=colours[f.bit + 1], label=f.name) for f in present],
                loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
    _save(pyplot, figure, out_png, dpi=120)


def plot_diff(diff, out_png: str | os.PathLike, max_pixels: int = 512) -> None:
    """Where two masks differ: newly bad, newly good and otherwise changed pixels."""
    pyplot = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    kinds = np.zeros(diff.shape, np.uint8)  # 0 same, 1 changed, 2 newly good, 3 newly bad
    rows, columns = np.unravel_index(diff.changed_indices, diff.shape)
    kind = np.where(diff.old_values == 0, 3, np.where(diff.new_values == 0, 2, 1))
    kinds[rows, columns] = kind
    from scipy import ndimage

    pooled = ndimage.maximum_filter(max_pool(kinds, max_pixels), size=3)
    colours = ["white", "tab:orange", "tab:green", "tab:red"]
    figure, axes = pyplot.subplots(figsize=(8, 7))
    axes.imshow(pooled, cmap=ListedColormap(colours), vmin=0, vmax=3, origin="lower",
                interpolation="nearest", extent=(0, diff.shape[1], 0, diff.shape[0]))
    axes.set_title(f"{diff.changed_pixels} changed pixels (max-pooled)")
    axes.legend(handles=[Patch(color=c, label=label) for c, label in
                         zip(colours[1:], ["flags changed", "newly good", "newly bad"],
                             strict=True)], loc="upper left", bbox_to_anchor=(1.01, 1))
    _save(pyplot, figure, out_png, dpi=100)
