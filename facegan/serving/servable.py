"""One loaded version of a SavedModel: its signatures, a thread-safe call, and warm-up replay."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facegan.client.tensors import DTYPES, to_numpy
from facegan.serving.batching import Batcher, BatchingOptions

WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000  # TF Serving's limit


@dataclass(frozen=True)
class TensorSpec:
    dtype: int  # tensorflow DataType enum
    shape: tuple[int, ...] | None  # -1 for an unknown dimension; None for unknown rank


@dataclass(frozen=True)
class Signature:
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]


def _spec(info) -> TensorSpec:
    shape = None if info.tensor_shape.unknown_rank else tuple(d.size for d in info.tensor_shape.dim)
    return TensorSpec(info.dtype, shape)


def read_signature_defs(path: Path):
    """The "serve" meta graph's SignatureDef map, as TF Serving's GetModelMetadata returns it."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    for meta_graph in saved_model.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags:
            return meta_graph.signature_def
    raise ValueError(f"{path} has no meta graph tagged 'serve'")


class Servable:
    """A SavedModel version loaded with TensorFlow. `run` may be called from many threads."""

    def __init__(
        self,
        name: str,
        version: int,
        path: Path,
        on_call: Callable[[int], None] | None = None,
        batching: BatchingOptions | None = None,
    ):
        import tensorflow as tf

        self.name = name
        self.version = version
        self.path = path
        self.signature_defs = read_signature_defs(path)
        module = tf.saved_model.load(str(path), tags=["serve"])
        self._module = module  # keeps the variables alive for the concrete functions
        self._functions = {}
        self.signatures: dict[str, Signature] = {}
        for key, sig in self.signature_defs.items():
            if key.startswith("__") or key not in module.signatures:
                continue  # e.g. __saved_model_init_op: not callable
            for info in list(sig.inputs.values()) + list(sig.outputs.values()):
                if info.dtype not in DTYPES:
                    raise ValueError(f"signature {key!r} uses unsupported dtype {info.dtype}")
            self._functions[key] = module.signatures[key]
            self.signatures[key] = Signature(
                {k: _spec(v) for k, v in sig.inputs.items()}, {k: _spec(v) for k, v in sig.outputs.items()}
            )
        if not self.signatures:
            raise ValueError(f"{path} has no callable signatures")
        self._on_call = on_call
        self._batchers = (
            {}
            if batching is None
            else {
                key: Batcher(functools.partial(self.run, key), batching, f"{name}-{version}-{key}")
                for key in self.signatures
            }
        )

    def predict(self, signature: str, inputs: dict[str, np.ndarray], deadline: float | None = None):
        """Run now, or through the signature's batch queue when batching is on."""
        if signature in self._batchers:
            return self._batchers[signature].submit(inputs, deadline)
        return self.run(signature, inputs)

    def close(self) -> None:
        for batcher in self._batchers.values():
            batcher.close()

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One model invocation; `inputs` were validated against `self.signatures[signature]`."""
        import tensorflow as tf

        if self._on_call is not None:
            self._on_call(len(next(iter(inputs.values()))))
        outputs = self._functions[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}

    def warm_up(self) -> int:
        """Replay assets.extra/tf_serving_warmup_requests (Predict logs); any failure fails the load."""
        import tensorflow as tf
        from tensorflow_serving.apis import prediction_log_pb2

        path = self.path / WARMUP_FILE
        if not path.is_file():
            return 0
        count = 0
        for record in tf.data.TFRecordDataset(str(path)).take(MAX_WARMUP_RECORDS):
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if log.WhichOneof("log_type") != "predict_log":
                raise ValueError("warm-up records other than Predict are not supported")
            request = log.predict_log.request
            signature = request.model_spec.signature_name or "serving_default"
            if signature not in self.signatures:
                raise ValueError(f"warm-up request for unknown signature {signature!r}")
            self.run(signature, {k: to_numpy(v) for k, v in request.inputs.items()})
            count += 1
        return count
