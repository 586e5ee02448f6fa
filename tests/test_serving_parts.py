"""The serving pieces on their own: tensors, the light protos, batching, version policies, config files."""

import subprocess
import sys
import threading

import numpy as np
import pytest

from facegan.client import protocol
from facegan.client.tensors import TensorError, from_numpy, to_numpy
from facegan.errors import UsageError
from facegan.serving.batching import Batcher, BatchingOptions, parse_batching_parameters
from facegan.serving.model_config import ModelSource, sources_from_config_file

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
        "import sys, time; sys.modules['tensorflow'] = None; t = time.perf_counter()\n"
        "from facegan.client import FaceClient\nfrom facegan.cli import build_parser\n"
        "from facegan.serving.model_config import sources_from_config_file\n"
        "FaceClient('localhost:1').close(); build_parser()\n"
        "assert not [m for m in sys.modules if m.startswith('tensorflow') and sys.modules[m]]\n"
        "print(time.perf_counter() - t)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert float(r.stdout) < 5  # a generous bound: typically ~0.2 s, against ~3 s for TensorFlow


def test_batching_parameters_text_format():
    options = parse_batching_parameters("""
        max_batch_size { value: 32 }
        batch_timeout_micros { value: 5000 }
        num_batch_threads { value: 2 }
        allowed_batch_sizes: 8
        allowed_batch_sizes: 32
    """)
    assert options == BatchingOptions(32, 5000, 10, 2, (8, 32))
    for bad, words in [
        ("max_batch_size: 3", "max_batch_size"),
        ("colour { value: 1 }", "colour"),
        ("max_batch_size { value: 8 }\nallowed_batch_sizes: 4", "allowed_batch_sizes"),
        ("num_batch_threads { value: 0 }", "num_batch_threads"),
    ]:
        with pytest.raises(ValueError, match=words):
            parse_batching_parameters(bad)


def test_batcher_splits_pads_and_merges():
    sizes = []

    def run(inputs):
        sizes.append(len(inputs["x"]))
        return {"y": inputs["x"] * 2}

    batcher = Batcher(
        run,
        BatchingOptions(
            max_batch_size=8, batch_timeout_micros=300_000, num_batch_threads=1, allowed_batch_sizes=(4, 8)
        ),
    )
    results = {}

    def one(i):
        results[i] = batcher.submit({"x": np.full((1 + i % 2, 3), i, np.float32)})["y"]

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    for i in range(4):
        np.testing.assert_array_equal(results[i], np.full((1 + i % 2, 3), 2 * i, np.float32))
    assert sum(sizes) >= 6 and all(s in (4, 8) for s in sizes) and len(sizes) <= 2


def test_version_policies():
    on_disk = [1, 2, 3, 5]
    assert ModelSource("m", None).aspired(on_disk) == {5}
    assert ModelSource("m", None, num_versions=2).aspired(on_disk) == {3, 5}
    assert ModelSource("m", None, policy="all").aspired(on_disk) == {1, 2, 3, 5}
    assert ModelSource("m", None, policy="specific", versions=(2, 4)).aspired(on_disk) == {2}


def test_model_config_file(tmp_path):
    path = tmp_path / "models.config"
    path.write_text("""model_config_list {
      config { name: "facegan" base_path: "/models/facegan" model_platform: "tensorflow"
               model_version_policy { specific { versions: 1 versions: 2 } }
               version_labels { key: "stable" value: 1 } }
      config { name: "other" base_path: "/models/other" }
    }""")
    a, b = sources_from_config_file(path)
    assert (a.name, str(a.base_path), a.policy, a.versions, a.labels) == (
        "facegan",
        "/models/facegan",
        "specific",
        (1, 2),
        {"stable": 1},
    )
    assert (b.policy, b.num_versions) == ("latest", 1)
    path.write_text("model_config_list { config { nam: 1 } }")
    with pytest.raises(UsageError, match="models.config"):
        sources_from_config_file(path)
