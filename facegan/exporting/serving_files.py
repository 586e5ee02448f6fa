"""Files TensorFlow Serving reads next to a model: warm-up records and models.config."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from facegan import fileio

WARMUP_SKIPPED = ("project",)  # the projection is warmed up through `project_steps`: the same graph


def write_warmup(path: Path, model_name: str, signatures: dict) -> None:
    """TF Serving's warm-up file (`facegan.layout.WARMUP_FILE`): one PredictionLog per signature of
    the table (TFRecord), each a batch of one zero input; `project_steps` runs one step (~0.1 s)."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature, table in signatures.items():
            if signature in WARMUP_SKIPPED:
                continue
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
            )
            for key, (dtype, shape, *_) in table["inputs"].items():
                fill = np.ones if key == "steps" else np.zeros  # the smallest valid request: 1 step, zeros
                value = fill([1 if size == -1 else size for size in shape], dtype)
                request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def update_models_config(config_path: Path, name: str, base_path: str | os.PathLike) -> None:
    """Add or replace `name` in TF Serving's model_config_list text file (written atomically)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    if config_path.is_file():
        text_format.Parse(config_path.read_text(), config)
    entries = config.model_config_list.config
    entry = next((c for c in entries if c.name == name), None) or entries.add()
    entry.name = name
    entry.base_path = str(Path(base_path).resolve())
    entry.model_platform = "tensorflow"
    if not entry.HasField("model_version_policy"):
        entry.model_version_policy.latest.num_versions = 1
    fileio.write_text(config_path, text_format.MessageToString(config))
