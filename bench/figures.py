"""Saving a benchmark's matplotlib figure, shared by bench/quality.py and bench/time_to_quality.py:
written whole (a temp file, then a rename), so a figure in docs/ is never half-written."""

from __future__ import annotations

import os
from pathlib import Path


def save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    os.replace(tmp, path)
