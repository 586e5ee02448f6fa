"""The prepared .npz cache: uint8 NHWC images with a manifest, written atomically and verified on load."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from facegan.errors import DataError
from facegan.fileio import atomic_path


def content_hash(images: np.ndarray) -> str:
    """SHA-256 of the array's bytes in C order (hashed in place, without a copy)."""
    return hashlib.sha256(np.ascontiguousarray(images).reshape(-1)).hexdigest()


def save_dataset(out: str | os.PathLike, images: np.ndarray, source: str, **extra) -> dict:
    """Write uint8 NHWC images plus their manifest as one uncompressed .npz, atomically."""
    return write_dataset(out, [images], len(images), images.shape[1], source, **extra)


def make_manifest(source: str, count: int, res: int, sha256: str, **extra) -> dict:
    return {
        "source": source,
        "count": count,
        "resolution": res,
        "sha256": sha256,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        **extra,
    }


class _CountMismatch(Exception):
    pass


def write_dataset(
    out: str | os.PathLike, chunks: Iterable[np.ndarray], count: int, res: int, source: str, **extra
) -> dict | None:
    """Stream uint8 [n, res, res, 3] chunks into a prepared .npz, atomically, hashing and writing
    each as it arrives (so a producer's later chunks are decoded meanwhile). The header is
    written first, for `count` images: if the chunks hold a different number, nothing is
    written and None is returned. Otherwise returns the manifest."""
    digest, n = hashlib.sha256(), 0
    try:
        with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w") as zf:
            with zf.open("images.npy", "w", force_zip64=True) as fp:
                np.lib.format.write_array_header_1_0(
                    fp, {"descr": "|u1", "fortran_order": False, "shape": (count, res, res, 3)}
                )
                for chunk in chunks:
                    if chunk.dtype != np.uint8 or chunk.shape[1:] != (res, res, 3):
                        raise ValueError(f"expected uint8 [n, {res}, {res}, 3] chunks, got {chunk.dtype} {chunk.shape}")
                    data = np.ascontiguousarray(chunk).reshape(-1)
                    fp.write(data)
                    digest.update(data)
                    n += len(chunk)
            if n != count:
                raise _CountMismatch
            manifest = make_manifest(source, count, res, digest.hexdigest(), **extra)
            with zf.open("manifest.npy", "w") as fp:
                np.lib.format.write_array(fp, np.array(json.dumps(manifest)))
    except _CountMismatch:
        return None
    return manifest


def load_dataset(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read and verify a prepared .npz (keys, dtype, shape and content hash)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist (create it with `facegan prepare`)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, manifest = npz["images"], json.loads(str(npz["manifest"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise DataError(f"data file {path} is corrupt or not a facegan cache ({type(e).__name__})") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2]:
        raise DataError(f"data file {path} holds {images.dtype} {images.shape}, expected uint8 [N, H, H, 3]")
    if len(images) == 0:
        raise DataError(f"data file {path} holds no images")
    if content_hash(images) != manifest.get("sha256"):
        raise DataError(f"data file {path} is corrupt: its content hash does not match its manifest")
    return images, manifest
