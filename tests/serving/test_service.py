"""`facegan serve` speaks TF Serving's API: checked with the official stubs over real sockets."""

import grpc
import numpy as np
import pytest
from conftest import start_server
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from facegan.client import FaceClient
from facegan.client.errors import ServingError
from facegan.serving.model_config import ModelSource

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(model_dir):
    s = start_server(model_dir, max_batch=8, sources=[ModelSource("facegan", model_dir, labels={"stable": 1})])
    yield s
    s.stop(1)


@pytest.fixture(scope="module")
def typed_server(model_dir):
    s = start_server(model_dir, typed_fields=True)
    yield s
    s.stop(1)


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        yield ch


def request(signature="", name="facegan", **inputs):
    import tensorflow as tf

    req = predict_pb2.PredictRequest()
    req.model_spec.name = name
    req.model_spec.signature_name = signature
    for key, value in inputs.items():
        req.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return req


def test_predict_both_signatures_with_official_stub(channel, model_dir):
    import tensorflow as tf

    from facegan.sampling import seed_to_z

    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    z = np.random.default_rng(0).standard_normal((3, 100)).astype(np.float32)
    resp = stub.Predict(request(z=z), timeout=10)  # empty signature_name means serving_default
    assert resp.model_spec.name == "facegan" and resp.model_spec.version.value == 1
    assert resp.model_spec.signature_name == "serving_default"
    images = tf.make_ndarray(resp.outputs["images"])
    assert images.dtype == np.uint8 and images.shape == (3, 32, 32, 3) and images.std() > 0
    in_process = tf.saved_model.load(str(model_dir / "1")).signatures["serving_default"](z=tf.constant(z))
    np.testing.assert_array_equal(images, in_process["images"].numpy())

    resp = stub.Predict(request("from_seed", seed=np.array([5, 6], np.int64)), timeout=10)
    assert set(resp.outputs) == {"images", "z"}
    np.testing.assert_allclose(tf.make_ndarray(resp.outputs["z"]), seed_to_z([5, 6], 100).numpy(), rtol=1e-6)

    resp = stub.Predict(request("from_seed", seed=np.array([5], np.int64)), timeout=10)
    np.testing.assert_array_equal(tf.make_ndarray(resp.outputs["images"])[0], images_for_seed(stub, 5))


def images_for_seed(stub, seed):
    import tensorflow as tf

    req = request("from_seed", seed=np.array([seed, seed + 1], np.int64))
    return tf.make_ndarray(stub.Predict(req, timeout=10).outputs["images"])[0]


def test_output_filter(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    req = request("from_seed", seed=np.array([1], np.int64))
    req.output_filter.append("z")
    assert set(stub.Predict(req, timeout=10).outputs) == {"z"}


def test_metadata_status_and_health(channel, server):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    req = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    req.model_spec.name = "facegan"
    resp = stub.GetModelMetadata(req, timeout=10)
    sigs = get_model_metadata_pb2.SignatureDefMap()
    assert resp.metadata["signature_def"].Unpack(sigs)
    assert {"serving_default", "from_seed"} <= set(sigs.signature_def)
    assert [d.size for d in sigs.signature_def["serving_default"].inputs["z"].tensor_shape.dim] == [-1, 100]

    status_req = get_model_status_pb2.GetModelStatusRequest()
    status_req.model_spec.name = "facegan"
    (v,) = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_req, timeout=10).model_version_status
    assert v.version == 1 and v.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE and v.status.error_code == 0

    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "tensorflow.serving.PredictionService"):
        assert (
            health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
            == health_pb2.HealthCheckResponse.SERVING
        )


def _error(channel, req):
    with pytest.raises(grpc.RpcError) as e:
        prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(req, timeout=10)
    return e.value.code(), e.value.details()


def _z(n=1):
    return np.zeros((n, 100), np.float32)


def _with_version(req, version=None, label=None):
    if version is not None:
        req.model_spec.version.value = version
    else:
        req.model_spec.version_label = label
    return req


def _filtered(req, alias):
    req.output_filter.append(alias)
    return req


@pytest.mark.parametrize(
    "make, code, words",
    [
        (lambda: request(name="nope", z=_z()), grpc.StatusCode.NOT_FOUND, "nope"),
        (lambda: _with_version(request(z=_z()), 7), grpc.StatusCode.NOT_FOUND, "7"),
        (lambda: _with_version(request(z=_z()), label="canary"), grpc.StatusCode.INVALID_ARGUMENT, "canary"),
        (lambda: request("nope", z=_z()), grpc.StatusCode.FAILED_PRECONDITION, "nope"),
        (lambda: request(), grpc.StatusCode.INVALID_ARGUMENT, "missing ['z']"),
        (lambda: request(z=_z(), q=_z()), grpc.StatusCode.INVALID_ARGUMENT, "unexpected ['q']"),
        (lambda: request(z=np.zeros((1, 100), np.float64)), grpc.StatusCode.INVALID_ARGUMENT, "'z' must be float32"),
        (
            lambda: request(z=np.zeros((1, 5), np.float32)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "'z' must have shape [-1, 100]",
        ),
        (lambda: request(z=np.zeros((100,), np.float32)), grpc.StatusCode.INVALID_ARGUMENT, "'z' must have shape"),
        (lambda: request(z=_z(9)), grpc.StatusCode.INVALID_ARGUMENT, "batch size 9"),
        (
            lambda: request(z=np.full((1, 100), np.nan, np.float32)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "'z' contains NaN",
        ),
        (
            lambda: request("from_seed", seed=np.array([1], np.int32)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "'seed' must be int64",
        ),
        (lambda: _filtered(request(z=_z()), "pixels"), grpc.StatusCode.INVALID_ARGUMENT, "pixels"),
    ],
)
def test_predict_errors(channel, make, code, words):
    got_code, details = _error(channel, make())
    assert got_code == code and words in details


def test_metadata_and_status_errors(channel):
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    req = get_model_metadata_pb2.GetModelMetadataRequest()
    req.model_spec.name = "facegan"
    with pytest.raises(grpc.RpcError) as e:
        stub.GetModelMetadata(req, timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status_req = get_model_status_pb2.GetModelStatusRequest()
    status_req.model_spec.name = "facegan"
    status_req.model_spec.version.value = 9
    with pytest.raises(grpc.RpcError) as e:
        model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(status_req, timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_client_against_both_encodings(server, typed_server):
    with FaceClient(f"127.0.0.1:{server.port}") as a, FaceClient(f"127.0.0.1:{typed_server.port}") as b:
        faces_a, z_a = a.from_seeds([3, 4])
        faces_b, z_b = b.from_seeds([3, 4])
        np.testing.assert_array_equal(faces_a, faces_b)
        np.testing.assert_array_equal(z_a, z_b)
        np.testing.assert_array_equal(a.generate(z_a), faces_a)
        assert faces_a.dtype == np.uint8 and faces_a.shape == (2, 32, 32, 3)
        meta = a.metadata()
        assert meta["version"] == 1
        assert meta["signatures"]["from_seed"]["inputs"] == {"seed": ("int64", [-1])}
        assert meta["signatures"]["serving_default"]["outputs"]["images"] == ("uint8", [-1, 32, 32, 3])
        assert [(s.version, s.state) for s in a.status()] == [(1, "AVAILABLE")]


def test_version_label_pins(server):
    with FaceClient(f"127.0.0.1:{server.port}", label="stable") as c:
        assert c.metadata()["version"] == 1 and c.from_seeds([2])[0].shape == (1, 32, 32, 3)


def test_client_errors_carry_the_status(server):
    with FaceClient(f"127.0.0.1:{server.port}", model="nope") as c, pytest.raises(ServingError) as e:
        c.from_seeds([1])
    assert e.value.code == grpc.StatusCode.NOT_FOUND and "nope" in str(e.value)
    with FaceClient(f"127.0.0.1:{server.port}", version=3) as c, pytest.raises(ServingError) as e:
        c.generate(np.zeros(100))
    assert e.value.code == grpc.StatusCode.NOT_FOUND
    with FaceClient("127.0.0.1:1", timeout=2, retries=2) as c:  # nothing listens on port 1
        with pytest.raises(ServingError) as e:
            c.status()
    assert e.value.code == grpc.StatusCode.UNAVAILABLE


def _code(call, request) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as raised:
        call(request, timeout=30)
    return raised.value.code(), raised.value.details()


def test_classify_regress_and_multi_inference_answer_as_tf_serving_does(channel):
    """As TF Serving answers a model without classify or regress signatures: INVALID_ARGUMENT
    (classifier.cc, regressor.cc, multi_inference.cc), never UNIMPLEMENTED."""
    from tensorflow_serving.apis import classification_pb2, inference_pb2, regression_pb2

    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    for call, message, kind, method in (
        (stub.Classify, classification_pb2.ClassificationRequest, "classification", "classify"),
        (stub.Regress, regression_pb2.RegressionRequest, "regression", "regress"),
    ):
        request = message()
        request.model_spec.name = "facegan"
        assert _code(call, request) == (
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Expected {kind} signature method_name to be tensorflow/serving/{method}. Was: tensorflow/serving/predict",
        )
        request.model_spec.signature_name = "nope"
        assert _code(call, request) == (grpc.StatusCode.INVALID_ARGUMENT, "No signature was found with the name: nope")
        request.model_spec.name = "nobody"
        assert _code(call, request)[0] == grpc.StatusCode.NOT_FOUND
    multi = inference_pb2.MultiInferenceRequest()
    assert _code(stub.MultiInference, multi)[0] == grpc.StatusCode.INVALID_ARGUMENT
    task = multi.tasks.add(method_name="tensorflow/serving/predict")
    task.model_spec.name = "facegan"
    assert _code(stub.MultiInference, multi) == (
        grpc.StatusCode.UNIMPLEMENTED,
        "Unsupported signature method_name: tensorflow/serving/predict",
    )
    task.method_name = "tensorflow/serving/classify"
    code, details = _code(stub.MultiInference, multi)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("Expected classification signature")


def test_reload_config_changes_what_is_served_as_tf_serving_does(model_dir, tmp_path):
    """ModelService/HandleReloadConfigRequest changes the served models without a restart: a new
    list replaces the old one; a list that cannot be served is INVALID_ARGUMENT and the running
    one stays."""
    import shutil

    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

    other = tmp_path / "other"
    shutil.copytree(model_dir, other)
    server = start_server(model_dir)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            models = model_service_pb2_grpc.ModelServiceStub(ch)

            def reload(*entries, custom=False):
                request = model_management_pb2.ReloadConfigRequest()
                if custom:
                    request.config.custom_model_config.type_url = "x"
                for name, path in entries:
                    request.config.model_config_list.config.add(
                        name=name, base_path=str(path), model_platform="tensorflow"
                    )
                return models.HandleReloadConfigRequest(request, timeout=120)

            def served(name):
                request = get_model_status_pb2.GetModelStatusRequest()
                request.model_spec.name = name
                try:
                    return [s.state for s in models.GetModelStatus(request, timeout=30).model_version_status]
                except grpc.RpcError as e:
                    return e.code()

            assert served("facegan") == [get_model_status_pb2.ModelVersionStatus.AVAILABLE]
            response = reload(("faces", other))
            assert response.status.error_code == 0
            assert served("faces") == [get_model_status_pb2.ModelVersionStatus.AVAILABLE]
            assert served("facegan") == grpc.StatusCode.NOT_FOUND
            for bad in ({"entries": [("x", tmp_path / "missing")]}, {"entries": [], "custom": True}, {"entries": []}):
                with pytest.raises(grpc.RpcError) as raised:
                    reload(*bad["entries"], custom=bad.get("custom", False))
                assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
            assert served("faces") == [get_model_status_pb2.ModelVersionStatus.AVAILABLE]  # still served
    finally:
        server.stop(1)
