"""bench/step_time.py: every GAN timed in each round, with its own flags; a bad flag is one line."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str):
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "step_time.py"), *args],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip


@pytest.mark.slow
def test_step_time_reports_every_variant_against_the_preset():
    res = bench("--steps", "2", "--rounds", "2", "--variant", "lazy=--r1-gamma 0.01 --r1-every 2")
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.startswith("CPU: ")
    rows = re.findall(r"^(\S+)\s+([\d.]+) ms/step  x([\d.]+) of fast32$", res.stdout, re.M)
    assert [name for name, _, _ in rows] == ["fast32", "fast32+lazy"]
    assert float(rows[0][2]) == 1.0 and all(float(ms) > 0 for _, ms, _ in rows)


def test_step_time_refuses_a_flag_train_does_not_have():
    res = bench("--steps", "1", "--rounds", "1", "--variant", "bad=--r1-evry 2")
    assert res.returncode == 2
    assert "unrecognized arguments: --r1-evry 2" in res.stderr and "Traceback" not in res.stderr
