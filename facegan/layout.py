"""Where facegan's files live: the one module that spells their names.

A run folder (`runs/00007-fast32/`) is the unit of training state, an export version folder
(`models/facegan/3/`) the unit of serving state. `RunDir` and `VersionDir` name their files;
nothing else writes these names out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from facegan.config import Config
from facegan.errors import ConfigError

MODELS_CONFIG = "models.config"  # TF Serving's model_config_list, kept by export in the base path


@dataclass(frozen=True)
class Folder:
    """A folder whose files one class names."""

    path: Path  # a str or PathLike is turned into a Path

    def __post_init__(self):
        object.__setattr__(self, "path", Path(self.path))


class RunDir(Folder):
    """A run folder and the files in it."""

    @property
    def config(self) -> Path:  # the fully resolved config (preset + flags)
        return self.path / "config.json"

    @property
    def data_manifest(self) -> Path:  # the data set's manifest (source, count, sha256)
        return self.path / "data.json"

    @property
    def preview_z(self) -> Path:  # the fixed preview latents (rows × cols × latent_dim)
        return self.path / "preview_z.npy"

    @property
    def metrics(self) -> Path:  # one JSON object per epoch
        return self.path / "metrics.jsonl"

    @property
    def previews(self) -> Path:  # the preview grids, epoch-0001.png …
        return self.path / "previews"

    def preview(self, epoch: int) -> Path:
        return self.previews / f"epoch-{epoch:04d}.png"

    def preview_frames(self) -> list[Path]:
        return sorted(self.previews.glob("epoch-*.png"))

    @property
    def checkpoints(self) -> Path:  # ckpt-0006.npz …
        return self.path / "checkpoints"

    @property
    def tensorboard(self) -> Path:  # TensorBoard events
        return self.path / "tensorboard"

    @property
    def evolution(self) -> Path:  # the preview grids in epoch order, animated
        return self.path / "evolution.gif"

    def has_checkpoint(self) -> bool:
        return any(self.checkpoints.glob("ckpt-*"))

    def load_config(self) -> Config:
        if not self.config.is_file():
            raise ConfigError(f"{self.path} is not a run folder (no config.json)")
        try:
            return Config.from_dict(json.loads(self.config.read_text()))
        except json.JSONDecodeError:
            raise ConfigError(f"{self.config} is not valid JSON") from None
        except (ValueError, TypeError, KeyError):
            raise ConfigError(f"{self.config} is not a facegan run config") from None

    def metrics_rows(self) -> list[dict]:
        """metrics.jsonl's rows, one per epoch. A last line cut short (a run killed while writing
        it: no newline after it) is left out, so the history before it stays readable; any other
        line that is not an epoch's JSON object is a ConfigError naming it."""
        if not self.metrics.is_file():
            return []
        lines = self.metrics.read_text(errors="replace").split("\n")
        rows = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                if number == len(lines):  # the write was cut short
                    break
                raise ConfigError(f"{self.metrics} line {number} is not JSON") from None
            if not isinstance(row, dict) or not isinstance(row.get("epoch"), int):
                raise ConfigError(f"{self.metrics} line {number} is not an epoch's metrics")
            rows.append(row)
        return rows


def file_in(folder: Path, name) -> Path:
    """The file a card names, which must lie inside the card's folder: a plain relative name, no
    '..', no absolute path, and not a symlink that leads out. ConfigError otherwise. Every path
    read from a card goes through here."""
    if not isinstance(name, str) or not name or "\\" in name or "\0" in name:
        raise ConfigError(f"the card in {folder} names a file as {name!r:.60}")
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise ConfigError(f"the card in {folder} names {name!r:.60}, outside its folder")
    path = Path(folder) / relative
    if not path.resolve().is_relative_to(Path(folder).resolve()):
        raise ConfigError(f"the card in {folder} names {name!r:.60}, which leads outside its folder")
    return path


WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"  # TF Serving's name, relative to a version folder
MODEL_CARD_FILE = "assets.extra/facegan.json"
PORTABLE_CARD_FILE = "facegan.json"  # the card in an ONNX or LiteRT export folder (export --format onnx|litert)


class VersionDir(Folder):
    """An export version folder (`<base>/<name>/<version>/`) and the files facegan puts in it."""

    @property
    def saved_model(self) -> Path:
        return self.path / "saved_model.pb"

    @property
    def assets(self) -> Path:
        return self.path / "assets"

    @property
    def extra(self) -> Path:  # assets.extra: files TF Serving and facegan read beside the SavedModel
        return self.path / "assets.extra"

    @property
    def warmup(self) -> Path:  # TF Serving's warm-up records (PredictionLog TFRecords)
        return self.path / WARMUP_FILE

    @property
    def model_card(self) -> Path:  # facegan's model card (JSON)
        return self.path / MODEL_CARD_FILE

    def is_export(self) -> bool:
        return self.saved_model.is_file() and self.model_card.is_file()
