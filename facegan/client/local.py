"""`LocalFaces`: the ONNX export (`facegan export --format onnx`) in this process, with the
clients' generation calls and no server: z -> faces through ONNX Runtime, seed -> z through
`philox.seed_to_z`, so `from_seeds` gives the server's faces (within 1/255 per pixel,
tests/exporting/test_portable.py) without TensorFlow or a network.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from facegan import extras
from facegan.client import philox
from facegan.layout import PORTABLE_CARD_FILE, file_in
from facegan.seeds import check_seeds

BATCH = 64  # faces per model call, as the server's and Run.faces' batches
MAX_MODEL_BYTES = 2**31  # protobuf's limit for one ONNX file; a card claiming more is refused before any read
ONNX_FIRST_BYTE = b"\x08"  # ModelProto's field 1 (ir_version, a varint), which every ONNX writer puts first


def read_onnx_export(folder: str | os.PathLike) -> tuple[dict, str, bytes]:
    """(card, model file name, model bytes) of an ONNX export folder, the bytes checked against
    the card's SHA-256; ValueError with one readable line otherwise. LocalFaces and `facegan web`
    both start here."""
    folder = Path(folder)
    card_path = folder / PORTABLE_CARD_FILE
    if not card_path.is_file():
        raise ValueError(
            f"{folder} is not an export folder: no {PORTABLE_CARD_FILE} (facegan export --format onnx --out DIR)"
        )
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{card_path} cannot be read as JSON: {e}") from None
    if not isinstance(card, dict):
        raise ValueError(f"{card_path} is not a facegan card (a JSON object)")
    if card.get("model_format") != "onnx":
        raise ValueError(f"{folder} holds a {card.get('model_format')!r:.40} export, not onnx")
    name, facts = _model_entry(card, card_path)
    path = file_in(folder, name)
    size = path.stat().st_size if path.is_file() else None
    if size != facts["bytes"]:
        raise ValueError(f"{path} is missing or not the {facts['bytes']} bytes its card says: damaged or replaced")
    try:
        model = path.read_bytes()
    except OSError as e:
        raise ValueError(f"{path} cannot be read: {e.strerror}") from None
    if hashlib.sha256(model).hexdigest() != facts["sha256"]:
        raise ValueError(f"{path} does not match the SHA-256 in its card: damaged or replaced")
    if not model.startswith(ONNX_FIRST_BYTE):
        raise ValueError(f"{path} is not an ONNX model")
    return card, name, model


def _model_entry(card: dict, card_path: Path) -> tuple[str, dict]:
    """The card's one model file: its name and its facts, checked; ValueError naming what is off."""
    files = card.get("files")
    if not isinstance(files, dict) or len(files) != 1:
        raise ValueError(f"{card_path} must list exactly one model file under 'files'")
    [(name, facts)] = files.items()
    if not isinstance(name, str) or not name.endswith(".onnx"):
        raise ValueError(f"{card_path} names {name!r:.60} as its model; an ONNX export's is a .onnx file")
    if not isinstance(facts, dict) or not isinstance(facts.get("sha256"), str):
        raise ValueError(f"{card_path} has no SHA-256 for {name}")
    size = facts.get("bytes")
    if type(size) is not int or not 0 < size <= MAX_MODEL_BYTES:
        raise ValueError(f"{card_path} gives {name} a size of {size!r:.30} bytes; at most {MAX_MODEL_BYTES}")
    for key in ("latent_dim", "resolution"):
        if type(card.get(key)) is not int or not 0 < card[key] <= 4096:
            raise ValueError(f"{card_path} has no valid {key!r}")
    return name, facts


class LocalFaces:
    """Faces from an ONNX export folder. `generate(z)` and `from_seeds(seeds)` as `FaceClient`'s."""

    def __init__(self, folder: str | os.PathLike, threads: int = 0):
        onnxruntime = extras.require("onnxruntime", "LocalFaces")  # a client without it only talks to servers

        self.card, _, model = read_onnx_export(folder)
        self.latent_dim = int(self.card["latent_dim"])
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default, every core
        self._session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])

    def generate(self, z) -> np.ndarray:
        """Faces (uint8 [N, H, W, 3]) for latent vectors z [N, latent_dim], BATCH at a time: the
        memory a call takes grows with N's faces, not with one model call over all of them."""
        z = np.asarray(z, np.float32)
        if z.ndim == 1:
            z = z[None]
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be [N, {self.latent_dim}], got {list(z.shape)}")
        if not len(z):
            raise ValueError("z is empty: no faces to make")
        batches = (z[i : i + BATCH] for i in range(0, len(z), BATCH))
        return np.concatenate([self._session.run(["images"], {"z": batch})[0] for batch in batches])

    def from_seeds(self, seeds) -> tuple[np.ndarray, np.ndarray]:
        """Faces and their z for seeds (facegan.seeds.check_seeds): the server's `from_seed`, computed here."""
        z = philox.seed_to_z(check_seeds(seeds), self.latent_dim)
        return self.generate(z), z

    def close(self) -> None:
        self._session = None

    def __enter__(self) -> LocalFaces:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
