"""facegan.client's protocol without TensorFlow: NumPy <-> TensorProto, the light protos, TF-free imports."""

import subprocess
import sys

import numpy as np
import pytest

from facegan.client import protocol
from facegan.client.tensors import TensorError, from_numpy, to_numpy

TensorProto = protocol.message("tensorflow.TensorProto")


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint8, np.int16, np.int8, np.int64, np.bool_])
@pytest.mark.parametrize("typed", [False, True])
def test_tensor_round_trip_and_tensorflow_agrees(dtype, typed):
    import tensorflow as tf

    array = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    proto = from_numpy(array, TensorProto, typed_fields=typed)
    decoded = to_numpy(proto)
    assert decoded.dtype == array.dtype and decoded.shape == array.shape
    np.testing.assert_array_equal(decoded, array)
    official = tf.make_tensor_proto(array)  # TensorFlow's own encoding decodes here too
    np.testing.assert_array_equal(to_numpy(TensorProto.FromString(official.SerializeToString())), array)
    np.testing.assert_array_equal(tf.make_ndarray(type(official).FromString(proto.SerializeToString())), array)


def test_tensor_typed_field_rules():
    one = TensorProto(dtype=1, float_val=[2.5])
    one.tensor_shape.dim.add(size=3)
    np.testing.assert_array_equal(to_numpy(one), [2.5, 2.5, 2.5])  # one value fills the shape
    two = TensorProto(dtype=1, float_val=[1.0, 2.0])
    two.tensor_shape.dim.add(size=3)
    with pytest.raises(TensorError, match="needs 3"):
        to_numpy(two)
    with pytest.raises(TensorError, match="unsupported"):
        to_numpy(TensorProto(dtype=8))  # DT_COMPLEX64
    pngs = TensorProto(dtype=7, string_val=[b"\x89PNG a", b"\x89PNG b"])  # DT_STRING: from_seed_png's output
    pngs.tensor_shape.dim.add(size=2)
    assert to_numpy(pngs).tolist() == [b"\x89PNG a", b"\x89PNG b"]
    assert to_numpy(from_numpy(to_numpy(pngs), TensorProto)).tolist() == [b"\x89PNG a", b"\x89PNG b"]
    short = TensorProto(dtype=1, tensor_content=b"\0" * 8)
    short.tensor_shape.dim.add(size=3)
    with pytest.raises(TensorError, match="holds 2 values"):
        to_numpy(short)


def test_light_protos_are_the_official_ones():
    assert protocol.DESCRIPTORS.read_bytes() == protocol.official_descriptor_set(), (
        "protos.binpb is stale: run python -m facegan.client.protocol"
    )


def test_client_and_cli_import_without_tensorflow():
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"
        "from facegan.client import FaceClient\nfrom facegan.cli import build_parser\n"
        "from facegan.serving.model_config import sources_from_config_file\n"
        "FaceClient('localhost:1').close(); build_parser()\n"
        "assert not [m for m in sys.modules if m.startswith('tensorflow') and sys.modules[m]]\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_clients_take_seeds_by_the_one_rule_before_any_call():
    """The seeds are checked by facegan.seeds.check_seeds before a request is sent
    (nothing listens on port 1: a request would fail with UNAVAILABLE instead)."""
    from facegan.client import FaceClient, RestClient
    from facegan.errors import UsageError

    for client in (FaceClient("127.0.0.1:1", timeout=1), RestClient("http://127.0.0.1:1", timeout=1)):
        with client:
            for bad in ([1.5], ["7"], [[1, 2]], [2**64], []):
                with pytest.raises(UsageError):
                    client.from_seeds(bad)
