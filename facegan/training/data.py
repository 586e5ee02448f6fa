"""Face data: the prepared .npz cache, the embedded LFW default, and the tf.data input pipeline."""
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

EMBEDDED = "embedded:lfw"  # the data name recorded for the default data set
LFW_FACES = 100  # lfw_subset(): 200 images of 25x25 gray, the first 100 are faces


def content_hash(images: np.ndarray) -> str:
    """SHA-256 of the array's bytes in C order (hashed in place, without a copy)."""
    return hashlib.sha256(np.ascontiguousarray(images).reshape(-1)).hexdigest()


def save_dataset(out: str | os.PathLike, images: np.ndarray, source: str, **extra) -> dict:
    """Write uint8 NHWC images plus their manifest as one uncompressed .npz, atomically."""
    return write_dataset(out, [images], len(images), images.shape[1], source, **extra)


def _manifest(source: str, count: int, res: int, sha256: str, **extra) -> dict:
    return {"source": source, "count": count, "resolution": res, "sha256": sha256,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), **extra}


class _CountMismatch(Exception):
    pass


def write_dataset(out: str | os.PathLike, chunks: Iterable[np.ndarray], count: int, res: int, source: str,
                  **extra) -> dict | None:
    """Stream uint8 [n, res, res, 3] chunks into a prepared .npz, atomically, hashing and writing
    each as it arrives (so a producer's later chunks are decoded meanwhile). The header is
    written first, for `count` images: if the chunks hold a different number, nothing is
    written and None is returned. Otherwise returns the manifest."""
    digest, n = hashlib.sha256(), 0
    try:
        with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w") as zf:
            with zf.open("images.npy", "w", force_zip64=True) as fp:
                np.lib.format.write_array_header_1_0(
                    fp, {"descr": "|u1", "fortran_order": False, "shape": (count, res, res, 3)})
                for chunk in chunks:
                    if chunk.dtype != np.uint8 or chunk.shape[1:] != (res, res, 3):
                        raise ValueError(f"expected uint8 [n, {res}, {res}, 3] chunks, got {chunk.dtype} {chunk.shape}")
                    data = np.ascontiguousarray(chunk).reshape(-1)
                    fp.write(data)
                    digest.update(data)
                    n += len(chunk)
            if n != count:
                raise _CountMismatch
            manifest = _manifest(source, count, res, digest.hexdigest(), **extra)
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


def embedded_faces(res: int) -> tuple[np.ndarray, dict]:
    """The 100 real LFW faces that ship inside scikit-image, upsampled to res and made RGB."""
    from PIL import Image
    from skimage.data import lfw_subset

    gray = np.round(lfw_subset()[:LFW_FACES] * 255).astype(np.uint8)
    images = np.stack([
        np.asarray(Image.fromarray(g).resize((res, res), Image.Resampling.LANCZOS)) for g in gray
    ])
    images = np.repeat(images[..., None], 3, axis=-1)
    return images, _manifest("skimage.data.lfw_subset()[:100] (25x25 gray LFW faces)", len(images), res,
                             content_hash(images))


def load_training_data(path: str | None, res: int) -> tuple[np.ndarray, dict]:
    """The run's images: a prepared cache at `path`, or the embedded faces when path is None."""
    if path is None:
        return embedded_faces(res)
    images, manifest = load_dataset(path)
    if images.shape[1] != res:
        raise DataError(f"data file {path} is {images.shape[1]} px but the config asks for {res} px "
                        f"(pass --res {images.shape[1]} or prepare the data at {res} px)")
    return images, manifest


def numpy_batches(images: np.ndarray, batch_size: int, seed: int, flip: bool, first_epoch: int, epochs: int):
    """The same pipeline without TensorFlow (the JAX backend): yields float32 [-1, 1] batches.

    Order and flips are functions of (seed, epoch) here too, so resume is exact; the random
    streams are NumPy's, so the batches differ from the TensorFlow pipeline's.
    """
    n = len(images)
    steps = n // batch_size
    if steps < 1:
        raise DataError(f"batch size {batch_size} is larger than the data set ({n} images)")

    def batches():
        for epoch in range(first_epoch, epochs):
            rng = np.random.default_rng([seed, epoch])
            order = rng.permutation(n)[: steps * batch_size].reshape(steps, batch_size)
            coins = rng.random((steps, batch_size)) < 0.5
            for step in range(steps):
                x = images[order[step]]
                if flip:
                    x = np.where(coins[step][:, None, None, None], x[:, :, ::-1], x)
                yield x.astype(np.float32) / 127.5 - 1.0

    return batches(), steps


def make_dataset(images: np.ndarray, batch_size: int, seed: int, flip: bool, first_epoch: int, epochs: int):
    """uint8 array -> shuffled batches of float32 images in [-1, 1], epochs first_epoch..epochs-1.

    Each epoch's order and flips are stateless functions of (seed, epoch), so a resumed run sees
    exactly the batches the uninterrupted run would have seen from that epoch on.
    """
    import tensorflow as tf

    n = len(images)
    steps = n // batch_size
    if steps < 1:
        raise DataError(f"batch size {batch_size} is larger than the data set ({n} images)")
    pixels = tf.convert_to_tensor(images)

    def epoch_batches(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([seed, epoch]))
        order = tf.reshape(order[: steps * batch_size], [steps, batch_size])
        return tf.data.Dataset.from_tensor_slices(order).enumerate().map(lambda step, idx: (epoch, step, idx))

    def load(epoch, step, idx):
        x = tf.gather(pixels, idx)
        if flip:
            coin = tf.random.stateless_uniform([batch_size], seed=tf.stack([seed + 1, epoch * steps + step]))
            x = tf.where((coin < 0.5)[:, None, None, None], tf.reverse(x, axis=[2]), x)
        return tf.cast(x, tf.float32) / 127.5 - 1.0

    ds = tf.data.Dataset.range(first_epoch, epochs).flat_map(epoch_batches)
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE), steps
