"""Backend-neutral checkpoints: every variable of both networks and both optimizers by path.

A checkpoint is one .npz written atomically: `ckpt-0007.npz` holds the state after epoch 7.
Variables are keyed by group and position ("generator/0007"), which the model builders fix;
Keras's own paths carry process-wide name counters (`seed_generator_3`) and would not match
across processes. Any backend that builds the same models can restore them, and
`facegan export` can pick out the generator alone.
"""

from __future__ import annotations

import json
import os
import re
import sys
import zipfile
from pathlib import Path

import numpy as np

from facegan.errors import CheckpointError
from facegan.fileio import atomic_path

PATTERN = re.compile(r"^ckpt-(\d{4,})\.npz$")


def _groups(gan) -> dict[str, list]:
    groups = {
        "generator": gan.generator.variables,
        "discriminator": gan.discriminator.variables,
        "g_optimizer": gan.g_optimizer.variables,
        "d_optimizer": gan.d_optimizer.variables,
        "rng": [gan.z_sampler.state],
    }
    if gan.generator_ema is not None:
        groups["generator_ema"] = gan.generator_ema.variables
    if gan.ada_target:
        groups["ada"] = [gan.ada_p]
    return groups


def _key(group: str, index: int) -> str:
    return f"{group}/{index:04d}"


def save(ckpt_dir: str | os.PathLike, gan, epoch: int, meta: dict, keep: int) -> Path:
    """Write the full training state after `epoch` and keep only the newest `keep` files."""
    arrays = {_key(g, i): np.asarray(v.value) for g, vs in _groups(gan).items() for i, v in enumerate(vs)}
    arrays["__meta__"] = np.array(json.dumps({**meta, "epoch": epoch}))
    path = Path(ckpt_dir) / f"ckpt-{epoch:04d}.npz"
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    for old in list_checkpoints(ckpt_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(ckpt_dir: str | os.PathLike) -> list[Path]:
    d = Path(ckpt_dir)
    found = [p for p in d.iterdir() if PATTERN.match(p.name)] if d.is_dir() else []
    return sorted(found, key=lambda p: int(PATTERN.match(p.name).group(1)))


def latest(ckpt_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(ckpt_dir)
    return found[-1] if found else None


def choose(ckpt_dir: str | os.PathLike, wanted: str | os.PathLike | int | None = None) -> Path | None:
    """The checkpoint to start from: `wanted` (an epoch number or a file), else the newest intact
    one. A newest file that cannot be read (a disk that filled up, a copy cut short) is skipped
    with one warning naming it, so one bad file is not a dead end. None if there is none."""
    if wanted is not None:
        text = str(wanted)
        if text.isascii() and text.isdigit():
            path = Path(ckpt_dir) / f"ckpt-{int(text):04d}.npz"
            if not path.is_file():
                epochs = ", ".join(
                    PATTERN.match(p.name).group(1).lstrip("0") or "0" for p in list_checkpoints(ckpt_dir)
                )
                raise CheckpointError(
                    f"no checkpoint for epoch {int(text)} in {ckpt_dir} (there are: {epochs or 'none'})"
                )
            return path
        return Path(text)
    found = list_checkpoints(ckpt_dir)
    for newest_first, path in enumerate(reversed(found)):
        try:
            read(path)
        except CheckpointError as e:
            print(f"warning: {e}; trying the one before it", file=sys.stderr, flush=True)
            continue
        if newest_first:
            print(f"warning: using {path.name}, the newest intact checkpoint", file=sys.stderr, flush=True)
        return path
    if found:
        raise CheckpointError(f"every checkpoint in {ckpt_dir} is corrupt")
    return None


def read(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """Load a checkpoint file -> (arrays by key, meta). Raises CheckpointError if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        meta = json.loads(str(arrays.pop("__meta__")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"checkpoint {path} is corrupt ({type(e).__name__})") from None
    return arrays, meta


def _assign(variables, group: str, arrays: dict[str, np.ndarray], path) -> None:
    if _key(group, len(variables)) in arrays:
        raise CheckpointError(f"checkpoint {path} has more {group} variables than the model: another config?")
    for i, v in enumerate(variables):
        key = _key(group, i)
        if key not in arrays:
            raise CheckpointError(f"checkpoint {path} has no {key}: was it written for another config?")
        if tuple(arrays[key].shape) != tuple(v.shape):
            raise CheckpointError(f"checkpoint {path}: {key} is {arrays[key].shape}, the model has {v.shape}")
        v.assign(arrays[key])


def restore(path: str | os.PathLike, gan) -> dict:
    """Restore the full training state into a compiled FaceGAN whose optimizers are built."""
    arrays, meta = read(path)
    for group, variables in _groups(gan).items():
        _assign(variables, group, arrays, path)
    return meta


def restore_generator(path: str | os.PathLike, generator, ema: bool = True) -> dict:
    """Load only the generator that samples: the EMA weights when the run kept them and `ema`
    (meta["weights"] says which)."""
    arrays, meta = read(path)
    group = "generator_ema" if ema and _key("generator_ema", 0) in arrays else "generator"
    _assign(generator.variables, group, arrays, path)
    return {**meta, "weights": group}


def restore_discriminator(path: str | os.PathLike, discriminator) -> dict:
    arrays, meta = read(path)
    _assign(discriminator.variables, "discriminator", arrays, path)
    return meta
