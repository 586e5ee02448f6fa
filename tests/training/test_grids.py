"""bench/grids.py: panels of runs on one z beside a panel of the real faces they trained on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from facegan import images
from facegan.data.embedded import embedded_faces

ROOT = Path(__file__).resolve().parents[2]


def grids(*args: str):
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "grids.py"), *args], capture_output=True, text=True, timeout=300
    )


def test_a_real_panel_draws_the_embedded_faces_beside_a_run(trained_run, tmp_path):
    out = tmp_path / "grid.png"
    res = grids("--out", str(out), "--rows", "2", "--real-seed", "5",
                "--panel", "real faces=real", "--panel", f"run={trained_run}:raw")  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    picture = images.load_png(out)
    faces, _ = embedded_faces(32)
    drawn = faces[np.random.default_rng(5).permutation(100)[:14]]
    expected = images.grid(images.enlarge(drawn, 2), 2, 7, margin=4)
    label = 18  # the label strip above each panel
    height, width = expected.shape[:2]
    np.testing.assert_array_equal(picture[label : label + height, :width], expected)
    assert picture.shape[1] == 2 * width + 12  # the run's panel beside it, a 12 px bar between
    run_panel = picture[label : label + height, width + 12 :]
    assert np.abs(run_panel.astype(int) - expected.astype(int)).mean() > 10  # generated, not the real faces


def test_a_panel_list_without_a_run_is_one_usage_line(tmp_path):
    res = grids("--out", str(tmp_path / "grid.png"), "--panel", "real faces=real")
    assert res.returncode == 2 and "at least one run folder" in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "grid.png").exists()
