"""Exporting from Python: `facegan.export(run, ...)` writes a run's generator as a new SavedModel
version (`<base>/<name>/<version>/`, for TF Serving) or as ONNX / LiteRT, and returns what it wrote
as an `ExportedModel`. `facegan export` is this function with its options as flags.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from facegan import extras
from facegan.errors import UsageError
from facegan.fileio import check_new_folder
from facegan.layout import PORTABLE_CARD_FILE, RunDir, VersionDir
from facegan.versions import DEFAULT_MODEL_NAME, MAX_VERSION, check_model_name, parse_version

FORMATS = ("savedmodel", "onnx", "litert")
DEFAULT_BASE_PATH = "models"  # a SavedModel's base folder when none is given (onnx/litert refuse one)


@dataclass(frozen=True)
class ExportedModel:
    """What an export wrote."""

    path: Path  # the version folder (savedmodel) or the output folder (onnx, litert)
    format: str  # "savedmodel", "onnx" or "litert"
    name: str | None  # the model name (savedmodel); None for onnx/litert
    version: int | None  # the version number (savedmodel); None for onnx/litert
    card: dict  # the model card: the run, the config, the checkpoint, signatures or inputs/outputs

    @property
    def base_path(self) -> Path | None:
        """The folder `facegan serve --model-base-path` takes (savedmodel): <base>/<name>."""
        return self.path.parent if self.format == "savedmodel" else None

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())


@extras.explained
def export(
    run,
    *,
    base_path: str | os.PathLike | None = None,
    name: str | None = None,
    version: int | str | None = None,
    checkpoint: str | int | None = None,
    format: str = "savedmodel",
    out: str | os.PathLike | None = None,
) -> ExportedModel:
    """Export `run` (a Run or a run folder) from its newest intact checkpoint (or `checkpoint`: an
    epoch or a file). savedmodel: version `version` (default the highest + 1, never overwritten)
    of `name` (default facegan) under `base_path` (default models/), and models.config updated.
    onnx/litert: into `out`, a new or empty folder. Bad options raise UsageError before TensorFlow
    loads, and a failed export leaves nothing behind."""
    run_path = Path(getattr(run, "path", run))
    if format not in FORMATS:
        raise UsageError(f"unsupported format {format!r}; choose one of {', '.join(FORMATS)}")
    if checkpoint is not None and not str(checkpoint).isdigit() and not Path(checkpoint).is_file():
        raise UsageError(f"checkpoint {checkpoint} does not exist")
    os.environ["KERAS_BACKEND"] = "tensorflow"  # the SavedModel and both converters start from the TF graph
    if format == "savedmodel":
        return _savedmodel(run_path, base_path, name, version, checkpoint, out)
    return _portable(run_path, format, out, checkpoint, base_path, name, version)


def _check_run(run_path: Path) -> None:
    if not RunDir(run_path).config.is_file():
        raise UsageError(f"{run_path} is not a run folder (no config.json)")


def _savedmodel(run_path: Path, base_path, name, version, checkpoint, out) -> ExportedModel:
    if out is not None:
        raise UsageError("out is for format onnx or litert; a SavedModel goes to base_path/name/<version>")
    base_path = DEFAULT_BASE_PATH if base_path is None else base_path
    name = DEFAULT_MODEL_NAME if name is None else name
    if version is not None:
        number = parse_version(str(version))
        if number is None:
            raise UsageError(
                f"version must be a positive integer in plain decimal, at most {MAX_VERSION}, got {str(version)[:40]!r}"
            )
        version = number
    problem = check_model_name(name)
    if problem:
        raise UsageError(problem)
    _check_run(run_path)
    from facegan.exporting.writer import export as write_version  # loads TensorFlow: after the checks

    path = write_version(run_path, base_path, name, version, checkpoint)
    card = json.loads(VersionDir(path).model_card.read_text())
    return ExportedModel(path, "savedmodel", name, int(path.name), card)


def _portable(run_path: Path, model_format: str, out, checkpoint, base_path, name, version) -> ExportedModel:
    given = {"base_path": base_path, "name": name, "version": version}
    for option, value in given.items():
        if value is not None:
            raise UsageError(f"{option} is for format savedmodel; format {model_format} writes to out")
    if out is None:
        raise UsageError(f"format {model_format} needs out, a new or empty folder")
    if parse_version(Path(out).name) is not None:
        raise UsageError(
            f"{out} is named like a version folder, which TF Serving and facegan serve would try to load as a "
            f"SavedModel: give a {model_format} export a folder of its own (e.g. exports/{model_format})"
        )
    check_new_folder(out)  # before TensorFlow loads: a mistake costs no time
    _check_run(run_path)
    from facegan.exporting.portable import export_portable

    path = export_portable(run_path, out, model_format, checkpoint)
    card = json.loads((path / PORTABLE_CARD_FILE).read_text())
    return ExportedModel(path, model_format, None, None, card)
