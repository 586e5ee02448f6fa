"""Which models to serve: TF Serving's model_config_list, read without TensorFlow."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format

from facegan.client import protocol
from facegan.errors import UsageError
from facegan.layout import RunDir
from facegan.serving.text import shorten


@dataclass(frozen=True)
class ModelSource:
    name: str
    base_path: Path
    policy: str = "latest"  # "latest", "all" or "specific" (TF Serving's ServableVersionPolicy)
    num_versions: int = 1  # for "latest"
    versions: tuple[int, ...] = ()  # for "specific"
    labels: dict[str, int] = field(default_factory=dict)  # version_labels, e.g. {"stable": 3}

    def aspired(self, on_disk: list[int]) -> set[int]:
        if self.policy == "all":
            return set(on_disk)
        if self.policy == "specific":
            return set(on_disk) & set(self.versions)
        return set(sorted(on_disk)[-self.num_versions :])


def sources_from_config_file(path: str | os.PathLike) -> list[ModelSource]:
    """TF Serving's --model_config_file (a ModelServerConfig with a model_config_list)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read model config file {path}: {e.strerror}") from None
    return sources_from_config_text(data, path)


def sources_from_config_text(data: bytes, path: str | os.PathLike) -> list[ModelSource]:
    """The same from the file's bytes (the watcher parses exactly what it compared)."""
    config = protocol.message("tensorflow.serving.ModelServerConfig")()
    try:
        text_format.Parse(data.decode("utf-8"), config)
    except UnicodeDecodeError as e:
        raise UsageError(f"model config file {path} is not UTF-8 text (byte {e.start})") from None
    except text_format.ParseError as e:
        raise UsageError(f"model config file {path}: {shorten(str(e), 200)}") from None
    return sources_from_config(config, f"model config file {path}")


def sources_from_config(config, what: str) -> list[ModelSource]:
    """The models a ModelServerConfig message lists (a file's, or a HandleReloadConfigRequest's:
    `what` names it in errors)."""
    if config.WhichOneof("config") != "model_config_list" or not config.model_config_list.config:
        raise UsageError(f"{what} has no model_config_list entries")
    sources = []
    for entry in config.model_config_list.config:
        policy = entry.model_version_policy.WhichOneof("policy_choice") or "latest"
        sources.append(
            ModelSource(
                name=entry.name,
                base_path=Path(entry.base_path),
                policy=policy,
                num_versions=entry.model_version_policy.latest.num_versions or 1,
                versions=tuple(entry.model_version_policy.specific.versions),
                labels=dict(entry.version_labels),
            )
        )
    return sources


def check_sources(sources: list[ModelSource]) -> None:
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise UsageError(f"model names must be unique, got {names}")
    for s in sources:
        if not s.name:
            raise UsageError("every model needs a name")
        if not s.base_path.is_dir():
            raise UsageError(f"model base path {s.base_path} does not exist (create it with `facegan export`)")
        # An empty base path is served, as TF Serving does (versions appear when exported). These two
        # never hold versions: a run folder, and one version of a model.
        if (s.base_path / "saved_model.pb").is_file():
            raise UsageError(
                f"{s.base_path} is one version of a model: serve the folder above it, {s.base_path.parent}"
            )
        run = RunDir(s.base_path)
        if run.config.is_file() and run.checkpoints.is_dir():
            raise UsageError(f"{s.base_path} is a training run: export it first (facegan export --run {s.base_path})")
        if s.policy == "specific" and not s.versions:
            raise UsageError(f"model {s.name}: the 'specific' version policy lists no versions")
