"""`facegan serve` with the very files the cluster mounts (deploy/k8s/config/): models.config
re-read with labels, BatchingParameters with every field TF Serving accepts, MonitoringConfig
on the REST port under TF Serving's metric names, and SSLConfig with mutual TLS."""

import json
import logging
import shutil
import subprocess
import urllib.request

import grpc
import numpy as np
import pytest
from conftest import ROOT, Hammer, config_list, run_cli, start_server, wait_for
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from facegan.client import FaceClient
from facegan.client.errors import ServingError
from facegan.errors import UsageError
from facegan.serving import config_files
from facegan.serving.batching import parse_batching_parameters
from facegan.serving.model_config import sources_from_config_file

CONFIG = ROOT / "deploy" / "k8s" / "config"
K8S_BASE_PATH = 'base_path: "/models/facegan"'  # where the Deployment mounts the model store


def models_config(base_path, versions=(1,), labels=None) -> str:
    """The ConfigMap's models.config, pointed at a local folder, with other versions or labels."""
    text = (CONFIG / "models.config").read_text()
    assert K8S_BASE_PATH in text and "specific { versions: 1 }" in text
    text = text.replace(K8S_BASE_PATH, f'base_path: "{base_path}"')
    text = text.replace("specific { versions: 1 }", "specific { " + " ".join(f"versions: {v}" for v in versions) + " }")
    if labels is not None:
        entries = " ".join(f'version_labels {{ key: "{k}" value: {v} }}' for k, v in labels.items())
        text = text.replace('version_labels { key: "stable" value: 1 }', entries)
    return text


def predict_with_label(stub, label):
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "facegan"
    req.model_spec.version_label = label
    req.inputs["seed"].dtype = 9  # DT_INT64
    req.inputs["seed"].tensor_shape.dim.add().size = 1
    req.inputs["seed"].int64_val.append(7)
    req.model_spec.signature_name = "from_seed"
    return stub.Predict(req, timeout=10).model_spec.version.value


def test_every_batching_field_parses_and_the_unused_are_named(caplog):
    text = (
        (CONFIG / "batching_parameters.txt").read_text()
        + """
        num_batch_threads { value: 2 }
        thread_pool_name { value: "facegan_batch_threads" }
        allowed_batch_sizes: 16
        allowed_batch_sizes: 64
        pad_variable_length_inputs: true
        enable_large_batch_splitting { value: true }
        max_execution_batch_size { value: 32 }
    """
    )
    options = parse_batching_parameters(text)
    assert options.max_batch_size == 64 and options.num_batch_threads == 2 and options.allowed_batch_sizes == (16, 64)
    assert options.ignored == (
        "thread_pool_name",
        "pad_variable_length_inputs",
        "enable_large_batch_splitting",
        "max_execution_batch_size",
    )
    with pytest.raises(ValueError, match="no_such_field"):
        parse_batching_parameters("no_such_field { value: 1 }")


@pytest.mark.slow
def test_unused_batching_fields_get_one_warning(model_dir, caplog):
    options = parse_batching_parameters("max_batch_size { value: 8 } thread_pool_name { value: 'x' }")
    caplog.set_level(logging.WARNING, logger="facegan.serve")
    server = start_server(model_dir, batching=options)
    server.stop(1)
    warnings = [r.getMessage() for r in caplog.records if "does not act on" in r.getMessage()]
    assert warnings == ["batching parameters that facegan parses but does not act on: thread_pool_name"]


def test_monitoring_and_ssl_config_files(tmp_path):
    assert config_files.metrics_path(CONFIG / "monitoring.config") == "/monitoring/prometheus/metrics"
    off = tmp_path / "off.config"
    off.write_text("prometheus_config { enable: false }")
    assert config_files.metrics_path(off) is None
    default = tmp_path / "default.config"
    default.write_text("prometheus_config { enable: true }")
    assert config_files.metrics_path(default) == config_files.PROMETHEUS_PATH
    bad = tmp_path / "bad.config"
    bad.write_text("prometheus_config { enable: maybe }")
    with pytest.raises(UsageError, match="monitoring config file"):
        config_files.metrics_path(bad)
    ssl = tmp_path / "ssl.config"
    ssl.write_text('server_key: "/etc/key.pem" server_cert: "/etc/cert.pem"')
    with pytest.raises(UsageError, match="PEM text"):
        config_files.tls_config(ssl)
    ssl.write_text('server_key: "-----BEGIN K" server_cert: "-----BEGIN C" client_verify: true')
    with pytest.raises(UsageError, match="custom_ca"):
        config_files.tls_config(ssl)


@pytest.mark.slow
def test_metrics_path_answers_with_tf_servings_names(model_dir):
    server = start_server(model_dir, rest_port=0, metrics_path=config_files.metrics_path(CONFIG / "monitoring.config"))
    try:
        with FaceClient(f"127.0.0.1:{server.port}") as c:
            c.from_seeds([1, 2])
        with FaceClient(f"127.0.0.1:{server.port}", model="invented", retries=0) as c, pytest.raises(ServingError):
            c.from_seeds([1])
        body = json.dumps({"signature_name": "from_seed", "instances": [3]}).encode()
        rest = f"http://127.0.0.1:{server.rest_port}"
        urllib.request.urlopen(urllib.request.Request(f"{rest}/v1/models/facegan:predict", body), timeout=10).read()
        with urllib.request.urlopen(f"{rest}/monitoring/prometheus/metrics", timeout=10) as r:
            assert r.headers["Content-Type"].startswith("text/plain")
            page = r.read().decode()
    finally:
        server.stop(1)
    assert "# TYPE :tensorflow:serving:request_count counter" in page
    assert ':tensorflow:serving:request_count{model_name="facegan",status="OK"} 2' in page
    assert ':tensorflow:serving:request_count{model_name="_other",status="NOT_FOUND"} 1' in page
    for entrypoint in ("GRPC", "REST"):
        labels = f'model_name="facegan",API="Predict",entrypoint="{entrypoint}"'
        assert f":tensorflow:serving:request_latency_count{{{labels}}} 1" in page
        assert f':tensorflow:serving:request_latency_bucket{{{labels},le="+Inf"}} 1' in page
    assert "facegan_requests_total" in page  # facegan's own series stay beside them


@pytest.mark.slow
def test_changed_config_moves_the_canary_label_without_a_failed_request(model_dir, tmp_path, caplog):
    models = tmp_path / "facegan"
    shutil.copytree(model_dir, models)
    shutil.copytree(models / "1", models / "2")
    config = tmp_path / "models.config"
    config.write_text(models_config(models, versions=(1, 2), labels={"stable": 1}))
    server = start_server(None, sources=sources_from_config_file(config), config_file=config, config_poll_s=0.1)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
        with pytest.raises(grpc.RpcError) as e:
            predict_with_label(stub, "canary")
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        with Hammer(lambda: predict_with_label(stub, "stable")) as hammer:
            config.write_text(models_config(models, versions=(1, 2), labels={"stable": 1, "canary": 2}))
            wait_for(lambda: _answers(stub, "canary") == 2)
            hammer.more(20)
            config.write_text(models_config(models, versions=(1, 2), labels={"stable": 2}))  # promote
            wait_for(lambda: hammer.results[-1] == 2 or hammer.failures)
            hammer.more(20)
            caplog.set_level(logging.ERROR, logger="facegan.serve")
            config.write_text("model_config_list { config { name: ")  # a broken edit: logged, config kept
            wait_for(lambda: any("keeping the running config" in r.getMessage() for r in caplog.records))
            config.write_text(models_config(models, versions=(1, 2), labels={"stable": 2, "canary": 3}))  # no v3
            wait_for(lambda: any("not available" in r.getMessage() for r in caplog.records))
            assert _answers(stub, "stable") == 2
            hammer.more(10)
    finally:
        channel.close()
        server.stop(1)
    answered = hammer.results
    assert hammer.failures == []
    assert answered[0] == 1 and answered[-1] == 2 and sorted(set(answered)) == [1, 2]


def _answers(stub, label):
    try:
        return predict_with_label(stub, label)
    except grpc.RpcError:
        return None


@pytest.mark.slow
def test_models_added_and_removed_by_the_config(model_dir, tmp_path):
    models = tmp_path / "facegan"
    shutil.copytree(model_dir, models)
    config = tmp_path / "models.config"
    config.write_text(config_list(models, "facegan"))
    server = start_server(None, sources=sources_from_config_file(config), config_file=config, config_poll_s=0.1)
    address = f"127.0.0.1:{server.port}"
    try:
        config.write_text(config_list(models, "facegan", "faces2"))
        wait_for(lambda: server.manager.available() == {"facegan": [1], "faces2": [1]})
        with FaceClient(address, model="faces2") as c:
            assert c.from_seeds([5])[0].shape == (1, 32, 32, 3)
        config.write_text(config_list(models, "faces2"))  # facegan removed: unloaded
        wait_for(lambda: server.manager.available() == {"faces2": [1]})
        with FaceClient(address, retries=0) as c, pytest.raises(ServingError) as e:
            c.from_seeds([5])
        assert e.value.code == grpc.StatusCode.NOT_FOUND
    finally:
        server.stop(1)


def make_ca(tmp_path):
    """A CA, a server certificate for localhost and a client certificate, all signed by the CA."""

    def openssl(*args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        tmp_path / "ca.key",
        "-out",
        tmp_path / "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=facegan test CA",
    )
    for name, extension in (
        ("server", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            tmp_path / f"{name}.key",
            "-out",
            tmp_path / f"{name}.csr",
            "-subj",
            f"/CN={name}",
        )
        (tmp_path / f"{name}.ext").write_text(extension + "\n")
        openssl(
            "x509",
            "-req",
            "-in",
            tmp_path / f"{name}.csr",
            "-CA",
            tmp_path / "ca.pem",
            "-CAkey",
            tmp_path / "ca.key",
            "-CAcreateserial",
            "-out",
            tmp_path / f"{name}.pem",
            "-days",
            "1",
            "-extfile",
            tmp_path / f"{name}.ext",
        )


@pytest.mark.slow
def test_mutual_tls_refuses_a_client_without_a_certificate(model_dir, tmp_path):
    make_ca(tmp_path)
    ssl = tmp_path / "ssl.config"
    pem = {name: (tmp_path / f"{name}").read_text() for name in ("server.key", "server.pem", "ca.pem")}
    ssl.write_text(
        f"server_key: {json.dumps(pem['server.key'])}\nserver_cert: {json.dumps(pem['server.pem'])}\n"
        f"custom_ca: {json.dumps(pem['ca.pem'])}\nclient_verify: true\n"
    )
    server = start_server(model_dir, tls=config_files.tls_config(ssl))
    address = f"localhost:{server.port}"
    try:
        client_cert = (str(tmp_path / "client.pem"), str(tmp_path / "client.key"))
        with FaceClient(address, tls=str(tmp_path / "ca.pem"), client_cert=client_cert) as c:
            faces, _ = c.from_seeds([3])
            assert faces.shape == (1, 32, 32, 3) and faces.dtype == np.uint8
        with FaceClient(address, tls=str(tmp_path / "ca.pem"), retries=0, timeout=5) as anonymous:
            with pytest.raises(ServingError) as e:
                anonymous.status()
            assert e.value.code == grpc.StatusCode.UNAVAILABLE
        r = run_cli(
            "status",
            "--server",
            address,
            "--tls",
            tmp_path / "ca.pem",
            "--tls-client-cert",
            tmp_path / "client.pem",
            tmp_path / "client.key",
        )
        assert r.returncode == 0 and "AVAILABLE" in r.stdout, r.stderr
    finally:
        server.stop(1)


def test_serve_cli_refuses_bad_config_flags(tmp_path):
    for args, words in (
        (["--model-config-file-poll-wait-seconds", "5"], "needs a model config file"),
        (["--monitoring-config-file", CONFIG / "monitoring.config"], "--rest-api-port"),
        (["--ssl-config-file", tmp_path / "missing.config"], "cannot read SSL config file"),
        (["--rest-api-timeout-in-ms", "0"], "--rest-api-timeout-in-ms must be 1..3600000"),
    ):
        r = run_cli("serve", "--model-base-path", tmp_path, *args)
        assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
