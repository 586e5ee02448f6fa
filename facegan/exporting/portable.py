"""`facegan export --format onnx|litert`: the generator, z -> images, for runtimes without TF Serving.

The same function as the SavedModel's `serving_default` (z float32 [N, latent_dim] -> images
uint8 [N, res, res, 3], through facegan's `to_uint8`), converted by well-kept converters:
tf2onnx (opset 17) for ONNX Runtime, onnxruntime-web and Triton's ONNX backend; TensorFlow's
TFLiteConverter for LiteRT (phones, `ai-edge-litert`). seed -> z is not in these files: ONNX has
no stateless Philox op, so the caller computes z with the ports of TF's own algorithm
(facegan/client/philox.py, facegan/web/seed_to_z.js).

The output folder holds the model file and its card, `facegan.json` (the SavedModel's card's
facts, the format, each file's SHA-256, the input and output). It is written to a hidden sibling
and renamed into place complete; the SavedModel versions are never touched, so TF Serving's base
path holds only what TF Serving loads.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from facegan import extras
from facegan.errors import UsageError
from facegan.fileio import check_new_folder, staged_folder
from facegan.layout import PORTABLE_CARD_FILE, RunDir

MODEL_FILES = {"onnx": "generator.onnx", "litert": "generator.tflite"}
ONNX_OPSET = 17  # onnxruntime-web and Triton's ONNX backend both run it


def export_portable(run_dir, out, model_format: str, checkpoint=None) -> Path:
    """Write the run's generator as `model_format` into the folder `out`; returns `out`."""
    if model_format not in MODEL_FILES:
        raise UsageError(f"unsupported format {model_format!r}; choose one of savedmodel, {', '.join(MODEL_FILES)}")
    out = Path(out)
    check_new_folder(out)
    from facegan.exporting.writer import model_card
    from facegan.training.run import restore_run_generator

    run = RunDir(run_dir)
    cfg, generator, _, meta = restore_run_generator(run.path, checkpoint)  # a bad checkpoint fails before any write
    with staged_folder(out, "export") as staging:
        model_file = staging / MODEL_FILES[model_format]
        if model_format == "onnx":
            write_onnx(generator, model_file)
        else:
            write_litert(generator, model_file)
        card = model_card(cfg, run, meta, version=None)
        card.pop("signatures")  # the SavedModel's; this file has one function, described below
        card["model_format"] = model_format
        card["files"] = {model_file.name: {"sha256": sha256(model_file), "bytes": model_file.stat().st_size}}
        latent_dim, resolution = cfg.model.latent_dim, cfg.model.resolution
        card["inputs"] = {"z": {"dtype": "float32", "shape": [-1, latent_dim]}}
        card["outputs"] = {"images": {"dtype": "uint8", "shape": [-1, resolution, resolution, cfg.model.channels]}}
        card["seed_to_z_ports"] = {"python": "facegan.client.philox.seed_to_z", "javascript": "seed_to_z.js"}
        (staging / PORTABLE_CARD_FILE).write_text(json.dumps(card, indent=2) + "\n")
    return out


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_onnx(generator, path: Path) -> None:
    import tensorflow as tf

    from facegan.exporting.signatures import serving_function

    tf2onnx = extras.require("tf2onnx", "--format onnx")

    spec = tf.TensorSpec([None, int(generator.input_shape[-1])], tf.float32, name="z")
    function = tf.function(serving_function(generator), input_signature=[spec])
    model, _ = tf2onnx.convert.from_function(function, input_signature=[spec], opset=ONNX_OPSET)
    for value in (*model.graph.input, *model.graph.output):  # tf2onnx names the batch "unk__164"
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    path.write_bytes(model.SerializeToString())


def write_litert(generator, path: Path) -> None:
    """Through a SavedModel holding `serving_default` alone: the converter's standard path, which
    freezes the variables into the file (from a concrete function it left them out)."""
    import keras
    import tensorflow as tf

    from facegan.exporting.signatures import serving_function
    from facegan.exporting.writer import tensorflow_info_off

    spec = tf.TensorSpec([None, int(generator.input_shape[-1])], tf.float32, name="z")
    archive = keras.export.ExportArchive()
    archive.add_endpoint("serving_default", serving_function(generator), input_signature=[spec])
    with tempfile.TemporaryDirectory(dir=path.parent) as saved:
        with tensorflow_info_off():
            archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=["serving_default"])
        path.write_bytes(converter.convert())
