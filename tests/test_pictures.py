"""Pictures: max-pooling keeps lone pixels; the commands write real PNG files."""

from __future__ import annotations

import numpy as np
import pytest
from support import subarray_reference
from typer.testing import CliRunner

from dqref import flags
from dqref.cli import app
from dqref.pictures import highest_flag, max_pool, or_pool

pytest.importorskip("matplotlib")
PNG = b"\x89PNG\r\n\x1a\n"


def test_pooling_keeps_a_lone_bad_pixel_and_its_highest_flag():
    dq = np.zeros((64, 64), np.uint32)
    dq[37, 5] = flags.value("DEAD|DO_NOT_USE")
    pooled = highest_flag(or_pool(dq, 8))
    assert pooled.shape == (8, 8)
    assert pooled[4, 0] == flags.flag("DEAD").bit + 1 and np.count_nonzero(pooled) == 1
    assert max_pool(np.arange(16).reshape(4, 4), 2).tolist() == [[5, 7], [13, 15]]


def test_show_histogram_plot_and_diff_png_write_pngs(tmp_path):
    old = subarray_reference(tmp_path / "old.fits", flags={"DEAD": [(1, 1)]})
    new = subarray_reference(tmp_path / "new.fits", flags={"HOT": [(2, 2)]})
    runner = CliRunner()
    assert runner.invoke(app, ["show", str(new), "--png", str(tmp_path / "m.png")]).exit_code == 0
    assert runner.invoke(app, ["histogram", str(new), "--plot",
                               str(tmp_path / "h.png")]).exit_code == 0
    assert runner.invoke(app, ["diff", str(new), str(old), "--png",
                               str(tmp_path / "d.png")]).exit_code == 0
    for name in ("m.png", "h.png", "d.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG
