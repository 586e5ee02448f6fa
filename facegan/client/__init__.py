"""The TF-free client side of TF Serving's gRPC API: messages, NumPy <-> TensorProto, FaceClient.

Nothing here imports TensorFlow (an import-linter contract checks it), so the demo image and any
user's client stay light.
"""

from facegan.client.errors import ServingError
from facegan.client.face_client import FaceClient
from facegan.client.model_client import ModelClient, VersionStatus
from facegan.client.rest_client import RestClient, connect

__all__ = ["FaceClient", "ModelClient", "RestClient", "ServingError", "VersionStatus", "connect"]
