"""Which folder names are model versions: the one rule that `facegan export` writes by and
`facegan serve` reads by, the same as TF Serving's file-system source.

A version folder's name is a plain decimal number (ASCII digits only: `"²".isdigit()` is True)
whose value is 1 .. 2**63 - 1, because a version travels as an int64 in every TF Serving message.
Zero-padded names count (`007` is version 7, read from `007/` itself). Everything else is not a
version: hidden folders such as export's `.export-7-x1y2` staging folders silently, other names
with a warning.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_MODEL_NAME = "facegan"  # the model export writes and the server, clients and demo ask for by default
MAX_VERSION = 2**63 - 1  # int64: ModelSpec.version, ModelVersionStatus.version
_DECIMAL = re.compile(r"[0-9]+")
# A model name is one safe path segment: it names the folder under the base path.
_MODEL_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def check_model_name(name: str) -> str | None:
    """Why `name` cannot be a model name ("..", "a/b", "", ...), or None when it can."""
    if _MODEL_NAME.fullmatch(name):
        return None
    return (
        f"model name {name[:80]!r} must be one folder name: 1-128 ASCII letters, digits, '_', '.' or '-', "
        "not starting with '.' or '-'"
    )


def parse_version(text: str) -> int | None:
    """The version a folder name (or a --version argument) stands for, or None if it is none."""
    if not _DECIMAL.fullmatch(text):
        return None
    digits = text.lstrip("0")
    if len(digits) > len(str(MAX_VERSION)):  # int() of 4,301 digits raises; of 10**6 digits costs seconds
        return None
    value = int(digits or "0")
    return value if 1 <= value <= MAX_VERSION else None


@dataclass
class VersionScan:
    """What one look at a base path found."""

    paths: dict[int, Path] = field(default_factory=dict)  # version -> its folder
    ignored: list[str] = field(default_factory=list)  # names that are not versions (hidden ones left out)
    duplicates: list[str] = field(default_factory=list)  # e.g. "007" when "7" is there too


def scan_versions(base_path: str | os.PathLike) -> VersionScan:
    """The version folders under base_path; an unreadable base path has none."""
    scan = VersionScan()
    try:
        entries = sorted(os.scandir(base_path), key=lambda e: e.name)
    except OSError:
        return scan
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        version = parse_version(entry.name)
        if version is None:
            scan.ignored.append(entry.name)
        elif version in scan.paths and scan.paths[version].name != str(version):
            scan.duplicates.append(scan.paths[version].name)  # the canonical name wins over a padded one
            scan.paths[version] = Path(entry.path)
        elif version in scan.paths:
            scan.duplicates.append(entry.name)
        else:
            scan.paths[version] = Path(entry.path)
    return scan
