"""Hostile clients, odd files and long uptimes against a real `facegan serve` (real sockets, real
files): each test reproduces a defect found by trying the server as an attacker or an unlucky
operator would, and checks the bound that now holds."""

import gc
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest
from conftest import ROOT, run_cli, start_server, wait_for
from grpc_health.v1 import health_pb2, health_pb2_grpc

from facegan.client import FaceClient, ServingError, protocol
from facegan.client.tensors import TensorError, to_numpy
from facegan.versions import MAX_VERSION, parse_version, scan_versions

pytestmark = pytest.mark.slow


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def raw_predict(address: str, request_bytes: bytes, timeout: float = 10.0) -> grpc.RpcError | bytes:
    """Send bytes as a Predict call, as a hostile client can; returns the error or the response bytes."""
    with grpc.insecure_channel(address, options=protocol.CLIENT_OPTIONS) as channel:
        rpc = channel.unary_unary(protocol.PREDICT, request_serializer=None, response_deserializer=None)
        try:
            return rpc(request_bytes, timeout=timeout)
        except grpc.RpcError as e:
            return e


def predict_request(name="facegan", signature="from_seed", alias="seed", dtype=9, dims=(1,), **fields):
    request = protocol.message("tensorflow.serving.PredictRequest")()
    request.model_spec.name = name
    request.model_spec.signature_name = signature
    tensor = request.inputs[alias]
    tensor.dtype = dtype
    for d in dims:
        tensor.tensor_shape.dim.add(size=d)
    for key, value in fields.items():
        if isinstance(value, bytes):
            setattr(tensor, key, value)
        else:
            getattr(tensor, key).extend(value)
    return request


@pytest.fixture(scope="module")
def server(model_dir):
    s = start_server(model_dir, poll_wait_s=0, monitoring_port=0)
    yield s
    s.stop(1)


def test_a_tiny_request_claiming_a_huge_tensor_costs_nothing(server):
    address = f"127.0.0.1:{server.port}"
    gc.collect()
    peak_before = peak_rss_mb()
    claims = [
        predict_request(dims=(500_000_000,), int64_val=[1]),  # 5e8 seeds "filled" from one value: 4 GB
        predict_request(dims=(2**62, 2**62), int64_val=[1]),  # a product that overflows int64
        predict_request(signature="serving_default", alias="z", dtype=1, dims=(64, 100_000_000), float_val=[0.5]),
        predict_request(signature="serving_default", alias="z", dtype=1, dims=(3_000_000_000, 100), float_val=[0]),
    ]
    for request in claims:
        body = request.SerializeToString()
        assert len(body) < 80
        error = raw_predict(address, body)
        assert isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert peak_rss_mb() - peak_before < 200
    # the client's decoder has its own bound, for what a hostile server might claim
    with pytest.raises(TensorError, match="at most"):
        to_numpy(predict_request(dims=(2**40,), int64_val=[1]).inputs["seed"])


def test_malformed_tensors_and_bodies_are_invalid_argument(server):
    address = f"127.0.0.1:{server.port}"
    z = "serving_default"
    bad = [
        predict_request(signature=z, alias="z", dtype=1, dims=(1, 100), tensor_content=b"\0" * 401),  # 100.25 floats
        predict_request(signature=z, alias="z", dtype=1, dims=(1, 100), tensor_content=b"\0" * 396),  # 99 floats
        predict_request(dims=(-3,), int64_val=[1, 2, 3]),
        predict_request(dims=(2,), int64_val=[1, 2, 3]),
        predict_request(dims=(1, 1), int64_val=[1]),  # wrong rank
    ]
    unknown_rank = predict_request()
    unknown_rank.inputs["seed"].tensor_shape.unknown_rank = True
    bodies = [r.SerializeToString() for r in [*bad, unknown_rank]]
    bodies += [b"\xff\xff\xff\xff", b"\x0a\x05\x0a\x03abc\xff"]  # not a PredictRequest at all
    for body in bodies:
        error = raw_predict(address, body)
        assert isinstance(error, grpc.RpcError), body
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (body, error.details())
    with FaceClient(address) as client:  # and the server is fine
        assert client.from_seeds([1])[0].shape == (1, 32, 32, 3)


def test_invented_names_do_not_grow_metrics_logs_or_errors(server, caplog):
    address = f"127.0.0.1:{server.port}"
    caplog.set_level(logging.INFO, logger="facegan.serve")
    rng = np.random.default_rng(0)
    for i in range(300):
        name = f"{i}-" + "".join(rng.choice(list("abcdefgh"), 1000))
        error = raw_predict(address, predict_request(name=name, int64_val=[1]).SerializeToString())
        assert error.code() == grpc.StatusCode.NOT_FOUND
    huge = "m" * 1_000_000
    error = raw_predict(address, predict_request(name=huge, int64_val=[1]).SerializeToString())
    assert error.code() == grpc.StatusCode.NOT_FOUND and len(error.details()) < 500
    label = "x" * 100_000
    with FaceClient(address, label=label) as client, pytest.raises(ServingError) as e:
        client.from_seeds([1])
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and len(e.value.message) < 500

    metrics = urllib.request.urlopen(f"http://127.0.0.1:{server.monitoring_port}/metrics", timeout=5).read()
    assert len(metrics) < 30_000 and b"aaaa" not in metrics and b"_other" in metrics
    logged = sum(len(r.getMessage()) for r in caplog.records)
    assert logged < 50_000, logged
    assert any("similar lines suppressed" in r.getMessage() for r in caplog.records) or len(caplog.records) <= 40


def copy_version(model_dir, base, name):
    """Publish a copy of version 1 as `facegan export` does: built aside, then renamed into place."""
    shutil.copytree(model_dir / "1", base / f".export-{name}")
    (base / f".export-{name}").rename(base / name)


def test_version_folder_names(model_dir, tmp_path, caplog):
    assert parse_version("7") == 7 and parse_version("007") == 7 and parse_version(str(MAX_VERSION)) == MAX_VERSION
    for name in ("0", "²", "٣", "-1", "+5", "1e3", " 7", str(MAX_VERSION + 1), ""):
        assert parse_version(name) is None, name

    base = tmp_path / "facegan"
    base.mkdir()
    copy_version(model_dir, base, "3")
    copy_version(model_dir, base, str(MAX_VERSION + 1))  # beyond int64: once the newest "version"
    (base / "²").mkdir()  # isdigit() is True for it
    (base / "junk").mkdir()
    (base / ".export-9-tmp").mkdir()  # a staging folder: ignored silently
    caplog.set_level(logging.WARNING, logger="facegan.serve")
    server = start_server(base, poll_wait_s=0.05)
    try:
        time.sleep(0.5)  # about ten polls
        address = f"127.0.0.1:{server.port}"
        with FaceClient(address) as client:
            assert [(v.version, v.state) for v in client.status()] == [(3, "AVAILABLE")]
            assert client.from_seeds([1])[1].shape == (1, 100)
        check = health_pb2_grpc.HealthStub(grpc.insecure_channel(address)).Check(health_pb2.HealthCheckRequest())
        assert check.status == health_pb2.HealthCheckResponse.SERVING
        copy_version(model_dir, base, "0012")  # zero-padded: version 12, read from its own folder
        deadline = time.time() + 60
        while [v.version for v in FaceClient(address).status()] != [12]:
            assert time.time() < deadline
            time.sleep(0.1)
        assert FaceClient(address).metadata()["version"] == 12
    finally:
        server.stop(1)
    ignored = [r.getMessage() for r in caplog.records if "ignoring folder" in r.getMessage()]
    assert sorted(ignored) == sorted(set(ignored)) and len(ignored) == 3, ignored  # once each, not per poll
    assert scan_versions(base).paths[12] == base / "0012"


def test_health_and_status_tell_the_truth_without_server_paths(model_dir, tmp_path):
    base = tmp_path / "facegan"
    copy_version(model_dir, base, "1")
    shutil.rmtree(base / "1" / "variables")  # TensorFlow's error names the missing file's full path
    server = start_server(base, poll_wait_s=0)
    try:
        address = f"127.0.0.1:{server.port}"
        check = health_pb2_grpc.HealthStub(grpc.insecure_channel(address)).Check(health_pb2.HealthCheckRequest())
        assert check.status == health_pb2.HealthCheckResponse.NOT_SERVING
        [status] = FaceClient(address).status()
        assert status.state == "END" and "<version 1>" in status.error, status.error
        assert str(tmp_path) not in status.error and "/tmp" not in status.error, status.error
    finally:
        server.stop(1)


def make_tls(tmp_path, name):
    key, cert = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
         "-subj", "/CN=localhost"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def test_bad_tls_files_are_named_not_port_in_use(model_dir, tmp_path):
    cert, key = make_tls(tmp_path, "a")
    other_cert, _ = make_tls(tmp_path, "b")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    cases = [
        (["--ssl-cert", garbage, "--ssl-key", key], "not valid PEM"),
        (["--ssl-cert", cert, "--ssl-key", garbage], "not valid PEM"),
        (["--ssl-cert", other_cert, "--ssl-key", key], "does not belong"),
        (
            ["--ssl-cert", tmp_path / "missing.crt", "--ssl-key", key],
            f"certificate file {tmp_path / 'missing.crt'} does not",
        ),
        (["--ssl-cert", cert, "--ssl-key", tmp_path / "nope.key"], f"key file {tmp_path / 'nope.key'} does not exist"),
        (["--ssl-key", key], "needs both --ssl-cert and --ssl-key"),
    ]
    # TF Serving's --ssl_config_file holds the PEM texts: checked the same way, naming the file's field
    pem = lambda path: Path(path).read_text().replace("\n", "\\n")
    for name, (server_cert, server_key) in {
        "mismatch.config": (pem(other_cert), pem(key)),
        "garbage.config": (pem(garbage), pem(key)),
    }.items():
        (tmp_path / name).write_text(f'server_key: "{server_key}"\nserver_cert: "{server_cert}"\n')
    cases += [
        (["--ssl-config-file", tmp_path / "mismatch.config"], "server_key in"),
        (["--ssl-config-file", tmp_path / "garbage.config"], "not valid PEM"),
    ]
    for args, message in cases:
        # --verbose shows TensorFlow's native lines: TensorFlow never loaded if only the error is there
        res = run_cli("serve", "--model-base-path", model_dir, "--port", 0, *args, "--verbose", timeout=120)
        assert res.returncode == 2 and message in res.stderr and "port" not in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1, res.stderr


SWAPS = """
import gc, json, shutil, sys, time, urllib.request
from pathlib import Path
sys.path.insert(0, "tests")
from conftest import start_server
from facegan.client import FaceClient
from facegan.serving.servable import Servable

def rss_mb():
    status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
    return int(status["RssAnon"].split()[0]) / 1024

base = Path(sys.argv[2])
shutil.copytree(Path(sys.argv[1]) / "1", base / "1")
server = start_server(base, poll_wait_s=0.05, monitoring_port=0)
client = FaceClient(f"127.0.0.1:{server.port}")
rss = {}
for version in range(2, 31):
    shutil.copytree(base / str(version - 1), base / ".export")  # aside, then renamed, as export does
    (base / ".export").rename(base / str(version))
    deadline = time.time() + 60
    while server.manager.available()["facegan"] != [version]:
        assert time.time() < deadline, server.manager.available()
        time.sleep(0.02)
    shutil.rmtree(base / str(version - 1))
    client.from_seeds([0, 1])
    gc.collect()
    rss[version] = rss_mb()
metrics = urllib.request.urlopen(f"http://127.0.0.1:{server.monitoring_port}/metrics", timeout=5).read().decode()
alive = sorted(o.version for o in gc.get_objects() if isinstance(o, Servable))
server.stop(1)
print(json.dumps({"rss": rss, "alive": alive, "metrics": metrics}))
"""


def test_a_month_of_hot_swaps_keeps_memory_flat(model_dir, tmp_path):
    """Versions come and go, each new one replacing the last, in a fresh server process. After the
    first swaps (two versions loaded at once, allocator pools: about +90 MB on the 32 px model)
    memory stays flat: 20 more swaps may not grow it by 48 MB (a leak of a loaded model's size,
    7.6 MB of weights plus its graphs, would grow it by hundreds). No unloaded servable stays
    alive, and /metrics holds only the live version's series."""
    res = subprocess.run(
        [sys.executable, "-c", SWAPS, str(model_dir), str(tmp_path / "facegan")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    rss = {int(k): v for k, v in out["rss"].items()}
    grown = max(rss[v] for v in range(25, 31)) - min(rss[v] for v in range(8, 12))
    assert grown < 48, f"RSS grew {grown:.0f} MB over 20 hot swaps: {rss}"
    assert out["alive"] == [30]
    assert 'version="29"' not in out["metrics"] and 'version="30"' in out["metrics"]


def test_a_version_copied_in_non_atomically_is_loaded_on_a_retry(model_dir, tmp_path):
    """An operator copies a version with `cp -r`: the poller sees the folder half-written and the
    load fails. As in TF Serving, the load is tried again (--max-num-load-retries, --load-retry-
    interval-micros) and the version serves once complete; meanwhile the old one keeps serving."""
    from facegan.serving.manager import LoadRetries

    # (with retries: enough that a slow copy cannot use them all up; the test waits for events)
    for retries in (LoadRetries(1000, 0.3), LoadRetries(0, 0.3)):
        base = tmp_path / f"r{retries.max_retries}" / "facegan"
        copy_version(model_dir, base, "1")
        (base / "2").mkdir()
        shutil.copy(model_dir / "1" / "saved_model.pb", base / "2")  # half-written: no variables yet
        server = start_server(base, poll_wait_s=0.05, load_retries=retries, sources=None)
        try:
            address = f"127.0.0.1:{server.port}"
            wait_for(lambda a=address: (2, "END") in [(v.version, v.state) for v in FaceClient(a).status()], 120)
            assert FaceClient(address).metadata()["version"] == 1  # the old version keeps answering
            for name in ("variables", "assets", "assets.extra", "fingerprint.pb"):
                source = model_dir / "1" / name
                if source.is_dir():
                    shutil.copytree(source, base / "2" / name)
                elif source.exists():
                    shutil.copy(source, base / "2" / name)
            if retries.max_retries == 0:  # no retries: it stays failed until the folder is removed
                time.sleep(2 * retries.interval_s)  # past its retry time, had it one
                server.manager.poll()  # a poll of our own, now that the folder is complete
                states = sorted((v.version, v.state) for v in FaceClient(address).status())
                assert states == [(1, "AVAILABLE"), (2, "END")]
            else:  # a retry after the copy loads it
                wait_for(lambda a=address: FaceClient(a).metadata()["version"] == 2, 120)
                assert (2, "AVAILABLE") in [(v.version, v.state) for v in FaceClient(address).status()]
        finally:
            server.stop(1)
