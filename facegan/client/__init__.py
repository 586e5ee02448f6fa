"""The TF-free client side of TF Serving's gRPC and REST APIs.

`protocol.py` (TF Serving's messages from `protos.binpb`, without TensorFlow), `tensors.py`
(NumPy <-> TensorProto, bounded), `model_client.py` (what both clients share), `face_client.py`
(`FaceClient`, gRPC), `rest_client.py` (`RestClient`, REST; `connect()` picks one by address),
`errors.py` (`ServingError`), `philox.py` (seed -> z exactly as TensorFlow draws it, in NumPy),
`latent.py` (`slerp`: walks through z),
`local.py` (`LocalFaces`: the ONNX export in-process, no server).

Nothing here imports TensorFlow (an import-linter contract checks it), so the demo image and any
user's client stay light.
"""

from facegan.client.errors import ServingError
from facegan.client.face_client import FaceClient
from facegan.client.model_client import ModelClient, VersionStatus
from facegan.client.rest_client import RestClient, connect

__all__ = ["FaceClient", "ModelClient", "RestClient", "ServingError", "VersionStatus", "connect"]
