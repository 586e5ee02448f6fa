"""Atomic file writes: write to a temporary sibling, then rename into place.

A reader (a resuming trainer, a polling model server) never sees a half-written file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from facegan.errors import UsageError


def check_new_folder(path: str | os.PathLike, flag: str = "--out") -> None:
    """Outputs that are folders go to a new or empty one, never over other files."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path} is a file, not a folder")
    if path.is_dir() and any(path.iterdir()):
        raise UsageError(f"{flag} {path} is not empty; it is never written over")


@contextlib.contextmanager
def staged_folder(out: str | os.PathLike, what: str) -> Iterator[Path]:
    """Yield a hidden sibling folder to fill; rename it to `out` (new, or empty: check_new_folder)
    when the block ends, so `out` appears complete or not at all. A failure removes the staging
    folder: an OSError (a full disk, a vanished parent) as one line naming `what`."""
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".staging", dir=out.parent))
    except OSError as e:
        raise UsageError(f"cannot write to {out.parent}: {e.strerror}") from None
    try:
        staging.chmod(0o755)  # mkdtemp makes 0700; a server running as another user must read it
        yield staging
        if out.is_dir():
            out.rmdir()  # empty (check_new_folder); a file that appeared meanwhile makes this fail
        os.rename(staging, out)
    except OSError as e:
        shutil.rmtree(staging, ignore_errors=True)
        raise UsageError(f"cannot write the {what} to {out}: {e.strerror or e}; nothing was kept") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the same folder; rename it to `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; the final file gets normal permissions
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line and fsync: metrics.jsonl survives a SIGKILL up to its last epoch."""
    with open(path, "a") as f:
        f.write(line.rstrip("\n") + "\n")
        f.flush()
        os.fsync(f.fileno())
