"""Operating `facegan serve`: hot swaps under load, broken versions, batching, TLS, deadlines, the CLIs."""

import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest
from conftest import Hammer, run_cli, start_serve, start_server, wait_for

from facegan.client import FaceClient, connect
from facegan.client.errors import ServingError
from facegan.serving.batching import BatchingOptions
from facegan.serving.tls import tls_from_files

pytestmark = pytest.mark.slow


def add_version(model_dir, version):
    """Publish a copy of version 1 the way `facegan export` does: build aside, then rename."""
    staging = model_dir / f".export-{version}-test"
    shutil.copytree(model_dir / "1", staging)
    os.rename(staging, model_dir / str(version))


def test_hot_swap_under_load_fails_no_request(model_dir, tmp_path):
    models = tmp_path / "facegan"
    shutil.copytree(model_dir, models)
    server = start_server(models, poll_wait_s=0.1)
    address = f"127.0.0.1:{server.port}"
    client = FaceClient(address, retries=0)  # one channel for all threads: gRPC channels are thread-safe

    def call():
        faces, _ = client.from_seeds([1, 2])
        assert faces.shape == (2, 32, 32, 3)
        return client.metadata()["version"]

    try:
        with Hammer(call, threads=4) as hammer:
            hammer.more(20)
            add_version(models, 2)
            wait_for(lambda: [s.version for s in FaceClient(address).status()] == [2])
            hammer.more(20)
            shutil.rmtree(models / "2")  # a removed version is unloaded; latest-1 falls back to 1
            wait_for(lambda: [(s.version, s.state) for s in FaceClient(address).status()] == [(1, "AVAILABLE")])
            hammer.more(20)
    finally:
        client.close()
        server.stop(1)
    seen = hammer.results
    assert hammer.failures == []
    assert 1 in seen and 2 in seen and seen[-1] == 1


def test_corrupt_version_is_skipped(model_dir, tmp_path, caplog):
    models = tmp_path / "facegan"
    shutil.copytree(model_dir, models)
    (models / "5").mkdir()
    (models / "5" / "saved_model.pb").write_bytes(b"not a SavedModel")
    server = start_server(models, poll_wait_s=0)
    try:
        with FaceClient(f"127.0.0.1:{server.port}") as c:
            status = {s.version: s for s in c.status()}
            assert status[5].state == "END" and status[5].error
            assert status[1].state == "AVAILABLE"
            assert c.metadata()["version"] == 1 and c.from_seeds([0])[0].shape == (1, 32, 32, 3)
    finally:
        server.stop(1)
    assert any("failed to load facegan version 5" in r.message for r in caplog.records)


def _metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_batching_merges_concurrent_calls(model_dir):
    options = BatchingOptions(max_batch_size=16, batch_timeout_micros=200_000, num_batch_threads=1)
    server = start_server(model_dir, batching=options, monitoring_port=0)
    try:
        address = f"127.0.0.1:{server.port}"
        with FaceClient(address) as c:
            expected, _ = c.from_seeds(list(range(16)))
        calls_before = _metric(server.monitoring_port, "facegan_model_batch_size_count")
        results = {}

        def one(seed):
            with FaceClient(address) as c:
                results[seed] = c.from_seeds([seed])[0][0]

        threads = [threading.Thread(target=one, args=(s,)) for s in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        calls = _metric(server.monitoring_port, "facegan_model_batch_size_count") - calls_before
        assert 1 <= calls <= 4, calls  # 16 requests, a handful of model calls
        for seed in range(16):  # each request got its own rows back
            np.testing.assert_array_equal(results[seed], expected[seed])
        text = urllib.request.urlopen(f"http://127.0.0.1:{server.monitoring_port}/metrics", timeout=5).read().decode()
        assert 'facegan_model_version_available{model="facegan",version="1"} 1.0' in text
        assert 'facegan_requests_total{code="OK",method="Predict",model="facegan"}' in text
    finally:
        server.stop(1)


def test_deadline_is_respected(model_dir):
    server = start_server(model_dir, batching=BatchingOptions(max_batch_size=64, batch_timeout_micros=3_000_000))
    try:
        with FaceClient(f"127.0.0.1:{server.port}", timeout=0.3) as c:
            with pytest.raises(ServingError) as e:
                c.from_seeds([1])  # waits in a batch queue that would close 3 s later
            assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        server.stop(5)


def test_tls_round_trip(model_dir, tmp_path):
    key, cert = tmp_path / "server.key", tmp_path / "server.crt"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    server = start_server(model_dir, tls=tls_from_files(str(cert), str(key)))
    try:
        with FaceClient(f"localhost:{server.port}", tls=str(cert)) as c:
            assert c.from_seeds([0])[0].shape == (1, 32, 32, 3)
        with FaceClient(f"localhost:{server.port}", retries=0, timeout=3) as plain:
            with pytest.raises(ServingError) as e:
                plain.status()
            assert e.value.code == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop(1)


def test_generate_cli_writes_faces(model_dir, tmp_path):
    from facegan.images import load_png

    server = start_server(model_dir)
    address = f"127.0.0.1:{server.port}"
    try:
        r = run_cli("generate", "--server", address, "--seeds", "0,1,4-6", "--out", tmp_path / "a", "--grid")
        assert r.returncode == 0, r.stderr
        assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
            "grid.png",
            "seed0000.png",
            "seed0001.png",
            "seed0004.png",
            "seed0005.png",
            "seed0006.png",
        ]
        r = run_cli("generate", "--server", address, "--seeds", "4", "--out", tmp_path / "b", "--truncation", "0.5")
        assert r.returncode == 0, r.stderr
        with FaceClient(address) as c:
            faces, z = c.from_seeds([4])
            np.testing.assert_array_equal(load_png(tmp_path / "a" / "seed0004.png"), faces[0])
            np.testing.assert_array_equal(load_png(tmp_path / "b" / "seed0004.png"), c.generate(0.5 * z)[0])
        assert not np.array_equal(load_png(tmp_path / "b" / "seed0004.png"), faces[0])
    finally:
        server.stop(1)
    r = run_cli("generate", "--server", address, "--seeds", "1", "--out", tmp_path / "c", "--timeout", "2")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "UNAVAILABLE" in r.stderr
    for bad in (["--truncation", "1.5"], ["--seeds", "x"]):
        r = run_cli("generate", "--seeds", "1", "--out", tmp_path / "d", *bad)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_serve_cli_drains_on_sigterm(model_dir, tmp_path):
    params = tmp_path / "batching.txt"
    params.write_text("max_batch_size { value: 64 }\nbatch_timeout_micros { value: 10000000 }\n")
    proc, address = start_serve(
        "--model-base-path", model_dir, "--port", "0", "--enable-batching", "--batching-parameters-file", params
    )
    try:
        results = []

        # Each waits up to 10 s in the batch queue, so it is in flight at SIGTERM, sent 3 s after
        # the calls (the server has no gauge of queued calls to wait for instead: a margin, not an event)
        def one(seed):
            with FaceClient(address, timeout=120) as c:
                results.append(c.from_seeds([seed])[0].shape)

        threads = [threading.Thread(target=one, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        time.sleep(3.0)
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join()
        assert proc.wait(timeout=60) == 0
        assert results == [(1, 32, 32, 3)] * 4
    finally:
        proc.kill()


def test_busy_port_is_refused(model_dir):
    from facegan.errors import UsageError

    server = start_server(model_dir)
    try:
        with pytest.raises(UsageError, match="port in use"):
            start_server(model_dir, port=server.port)
    finally:
        server.stop(1)


@pytest.mark.parametrize(
    "args, words",
    [
        (["--model-base-path", "/nonexistent/facegan"], "does not exist"),
        (["--model-config-file", "/nonexistent.config"], "cannot read"),
        (
            ["--model-base-path", ".", "--enable_batching=true", "--batching-parameters-file", "pyproject.toml"],
            "batching parameters",
        ),
        (["--model-base-path", ".", "--batching_parameters_file=x.txt"], "set without --enable-batching"),
        (["--model_base_path=.", "--enable_batching=maybe"], "expected true or false, got 'maybe'"),
        (["--model_base_path=.", "--tensorflow_intra_op_parallelism=2"], "does not implement"),
        (["--model-base-path", ".", "--ssl-cert", "x.pem"], "TLS needs both"),
        (["--model-base-path", ".", "--port", "70000"], "port must be a whole number in 0..65535"),
    ],
)
def test_serve_cli_bad_input(args, words):
    r = run_cli("serve", *args, timeout=60)
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def _no_image_variables() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("MODEL_NAME", "MODEL_BASE_PATH")}


def test_serve_names_its_models_or_says_how():
    r = run_cli("serve", "--port=0", timeout=60, env=_no_image_variables())
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--model_base_path DIR or --model_config_file FILE (or set MODEL_NAME and MODEL_BASE_PATH" in r.stderr
    r = run_cli("serve", timeout=60, env={**_no_image_variables(), "MODEL_NAME": ""})
    assert r.returncode == 2 and "must not be empty" in r.stderr, r.stderr


def test_the_images_variables_pick_the_model_as_its_entrypoint_does():
    """tf_serving_entrypoint.sh's rule: MODEL_BASE_PATH/MODEL_NAME is the base path, MODEL_NAME
    the name, REST on 8501; flags on the command line win, as they come after its own."""
    from facegan.cli import build_parser
    from facegan.commands.serve import image_entry

    def entry(argv, environ):
        args = build_parser().parse_args(["serve", *argv])
        image_entry(args, environ)
        return args.model_name, args.model_base_path, args.rest_api_port

    env = {"MODEL_NAME": "faces", "MODEL_BASE_PATH": "/srv/models"}
    assert entry([], env) == ("faces", "/srv/models/faces", 8501)
    assert entry([], {"MODEL_NAME": "faces"}) == ("faces", "/models/faces", 8501)  # the image's ENV defaults
    assert entry([], {"MODEL_BASE_PATH": "/m"}) == ("model", "/m/model", 8501)
    assert entry(["--rest_api_port=0", "--model_name=x"], env) == ("x", "/srv/models/faces", 0)
    assert entry(["--model_base_path=/a"], env) == ("facegan", "/a", 0)  # flags name the model: no variables


def test_serve_from_the_images_variables_gives_faces(model_dir):
    """The same variables end to end: `MODEL_NAME=facegan MODEL_BASE_PATH=<base> facegan serve` serves
    <base>/facegan (the REST port is a free one here instead of 8501)."""
    from conftest import free_port, stop_process

    rest = free_port()
    env = {**os.environ, "MODEL_NAME": model_dir.name, "MODEL_BASE_PATH": str(model_dir.parent)}
    proc, address = start_serve("--port=0", f"--rest_api_port={rest}", env=env)
    try:
        for client in (
            FaceClient(address, model_dir.name, timeout=120),
            connect(f"http://127.0.0.1:{rest}", model_dir.name),
        ):
            with client:
                assert client.from_seeds([3])[0].shape == (1, 32, 32, 3)
    finally:
        stop_process(proc)
