"""TF Serving's REST API in `facegan serve`: real HTTP over a real socket, against a real export.
REST and gRPC are two doors into one Predictor: same faces, same checks, same batching queue."""

import base64
import http.client
import io
import json
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import run_cli, start_server
from PIL import Image

from facegan.client import FaceClient, RestClient
from facegan.serving.batching import BatchingOptions

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(model_dir):
    s = start_server(model_dir, rest_port=0, poll_wait_s=0, monitoring_port=0)
    yield s
    s.stop(1)


def call(server, path, body=None, method=None, raw=None):
    """(HTTP status, parsed JSON body) of one request."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    request = urllib.request.Request(f"http://127.0.0.1:{server.rest_port}{path}", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_status_and_metadata_are_tf_servings_json(server):
    status, body = call(server, "/v1/models/facegan")
    assert status == 200
    assert body == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    assert call(server, "/v1/models/facegan/versions/1")[1] == body
    status, meta = call(server, "/v1/models/facegan/metadata")
    assert status == 200 and meta["model_spec"] == {"name": "facegan", "version": "1", "signature_name": ""}
    defs = meta["metadata"]["signature_def"]
    assert defs["@type"] == "type.googleapis.com/tensorflow.serving.SignatureDefMap"
    seed = defs["signature_def"]["from_seed_png"]["inputs"]["seed"]
    assert seed["dtype"] == "DT_INT64" and seed["tensor_shape"]["dim"] == [{"size": "-1", "name": ""}]
    assert set(defs["signature_def"]) >= {"serving_default", "from_seed", "from_seed_png"}


def test_row_and_columnar_predict_equal_grpc_faces(server):
    with FaceClient(f"127.0.0.1:{server.port}") as grpc_client:
        faces, z = grpc_client.from_seeds([3, 4, 5])
    status, rows = call(server, "/v1/models/facegan:predict", {"signature_name": "from_seed", "instances": [3, 4, 5]})
    assert status == 200 and len(rows["predictions"]) == 3 and set(rows["predictions"][0]) == {"images", "z"}
    np.testing.assert_array_equal(np.array([r["images"] for r in rows["predictions"]], np.uint8), faces)
    status, columns = call(server, "/v1/models/facegan:predict", {"signature_name": "from_seed", "inputs": [3, 4, 5]})
    np.testing.assert_array_equal(np.array(columns["outputs"]["images"], np.uint8), faces)
    np.testing.assert_allclose(np.array(columns["outputs"]["z"], np.float32), z, rtol=1e-6)
    # one output: the bare tensor, in both formats; serving_default is the default signature
    status, one = call(server, "/v1/models/facegan/versions/1:predict", {"instances": z.tolist()})
    assert status == 200 and np.array_equal(np.array(one["predictions"], np.uint8), faces)
    status, one = call(server, "/v1/models/facegan:predict", {"inputs": {"z": z.tolist()}})
    assert np.array_equal(np.array(one["outputs"], np.uint8), faces)


def test_png_signature_decodes_to_the_same_pixels(server):
    status, body = call(server, "/v1/models/facegan:predict", {"signature_name": "from_seed_png", "instances": [42, 7]})
    assert status == 200
    pngs = [base64.b64decode(p["b64"]) for p in body["predictions"]]
    decoded = np.stack([np.asarray(Image.open(io.BytesIO(p))) for p in pngs])
    with FaceClient(f"127.0.0.1:{server.port}") as client:
        faces, _ = client.from_seeds([42, 7])
        assert client.predict("from_seed_png", {"seed": np.array([42, 7])})["image_bytes"].tolist() == pngs
    np.testing.assert_array_equal(decoded, faces)


@pytest.mark.parametrize(
    "path, body, code, words",
    [
        ("/v1/models/facegan:predict", b"{not json", 400, "not valid JSON"),
        ("/v1/models/facegan:predict", b"[1, 2]", 400, "JSON object"),
        ("/v1/models/facegan:predict", {"instances": [1], "inputs": [1]}, 400, "exactly one of"),
        ("/v1/models/facegan:predict", {"signature_name": "from_seed"}, 400, "exactly one of"),
        ("/v1/models/facegan:predict", {"instances": [[0.0] * 100, [0.0] * 99]}, 400, "ragged"),
        ("/v1/models/facegan:predict", {"signature_name": "from_seed", "instances": ["a"]}, 400, "got text"),
        ("/v1/models/facegan:predict", {"signature_name": "from_seed", "instances": [1.5]}, 400, "got floats"),
        ("/v1/models/facegan:predict", {"signature_name": "from_seed", "instances": [2**70]}, 400, "out of range"),
        ("/v1/models/facegan:predict", {"instances": [[0.0] * 99]}, 400, "must have shape [-1, 100]"),
        ("/v1/models/facegan:predict", {"signature_name": "from_seed", "inputs": list(range(65))}, 400, "1..64"),
        ("/v1/models/facegan:predict", {"instances": [[float("nan")] * 100]}, 400, "NaN"),
        ("/v1/models/facegan:predict", {"inputs": {"z": [[0.0] * 100], "w": [1]}}, 400, "unexpected ['w']"),
        ("/v1/models/facegan:predict", {"signature_name": "nope", "instances": [1]}, 400, "nope"),
        ("/v1/models/nobody:predict", {"instances": [1]}, 404, "Servable not found"),
        ("/v1/models/facegan/versions/9:predict", {"instances": [1]}, 404, "Specific(facegan, 9)"),
        ("/v1/models/facegan/versions/x1", None, 400, "decimal"),
        ("/v1/models/facegan/labels/stable", None, 400, "Unrecognized servable version label"),
        ("/v1/models/facegan:classify", {"examples": []}, 400, "Expected classification signature method_name"),
        ("/v1/models/facegan:regress", {"examples": []}, 400, "Expected regression signature method_name"),
        ("/v1/models/facegan:explain", {}, 400, "not supported"),
        ("/v1/nothing", None, 404, "no such endpoint"),
    ],
)
def test_bad_input_gets_its_status_code_and_an_error_body(server, path, body, code, words):
    raw = body if isinstance(body, bytes) else None
    status, answer = call(server, path, None if raw else body, raw=raw)
    assert status == code and list(answer) == ["error"] and words in answer["error"], answer
    assert call(server, "/v1/models/facegan")[0] == 200  # and the server is fine


def test_wrong_method_oversized_body_and_slow_clients(server):
    assert call(server, "/v1/models/facegan", method="POST", raw=b"{}")[0] == 405
    assert call(server, "/v1/models/facegan:predict")[0] == 405
    huge = b'{"instances": [' + b"0," * 2_500_000 + b"0]}"  # 5 MB
    try:
        status, answer = call(server, "/v1/models/facegan:predict", raw=huge)
        assert status == 413 and "error" in answer
    except urllib.error.URLError:  # the server may close the connection before reading it all
        pass
    # a client that sends headers and then nothing, or only part of its body, holds no worker
    stalled = []
    for _ in range(12):
        s = socket.create_connection(("127.0.0.1", server.rest_port))
        s.sendall(b'POST /v1/models/facegan:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"inst')
        stalled.append(s)
    try:
        status, _ = call(server, "/v1/models/facegan:predict", {"signature_name": "from_seed", "instances": [1]})
        assert status == 200  # answered while all 12 hold their connections
    finally:
        for s in stalled:
            s.close()


def test_keep_alive_connection_serves_many_requests(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.rest_port, timeout=30)
    try:
        for seed in range(5):
            body = json.dumps({"signature_name": "from_seed", "inputs": [seed]})
            connection.request("POST", "/v1/models/facegan:predict", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            assert response.status == 200 and "outputs" in json.loads(response.read())
    finally:
        connection.close()


def test_cli_and_rest_client_speak_rest(server, tmp_path):
    url = f"http://127.0.0.1:{server.rest_port}"
    with RestClient(url) as rest, FaceClient(f"127.0.0.1:{server.port}") as grpc_client:
        faces, z = rest.from_seeds([0, 1])
        expected, expected_z = grpc_client.from_seeds([0, 1])
        np.testing.assert_array_equal(faces, expected)
        np.testing.assert_array_equal(rest.generate(z), grpc_client.generate(z))
        assert rest.metadata() == grpc_client.metadata()
        assert rest.status() == grpc_client.status()
    res = run_cli("generate", "--server", url, "--seeds", "0-1", "--out", tmp_path / "faces")
    assert res.returncode == 0, res.stderr
    res = run_cli("status", "--server", url)
    assert res.returncode == 0 and "version 1: AVAILABLE" in res.stdout
    res = run_cli("status", "--server", url, "--model", "nobody")
    assert res.returncode == 1 and "NOT_FOUND" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def metric(server, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{server.monitoring_port}/metrics", timeout=5).read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_rest_and_grpc_share_the_batching_queue(model_dir):
    """Concurrent requests through both doors merge into the same model calls (the server counts
    every model call and its rows in facegan_model_batch_size)."""
    options = BatchingOptions(max_batch_size=64, batch_timeout_micros=500_000, num_batch_threads=1)
    server = start_server(model_dir, batching=options, rest_port=0, poll_wait_s=0, monitoring_port=0)
    calls_before = metric(server, "facegan_model_batch_size_count")
    rows_before = metric(server, "facegan_model_batch_size_sum")
    results = []

    def via_rest(seed):
        body = {"signature_name": "from_seed", "instances": [seed]}
        results.append(call(server, "/v1/models/facegan:predict", body)[0])

    def via_grpc(seed):
        with FaceClient(f"127.0.0.1:{server.port}") as c:
            results.append(c.from_seeds([seed])[0].shape)

    try:
        threads = [threading.Thread(target=via_rest, args=(s,)) for s in range(4)]
        threads += [threading.Thread(target=via_grpc, args=(s,)) for s in range(4, 8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        calls = metric(server, "facegan_model_batch_size_count") - calls_before
        rows = metric(server, "facegan_model_batch_size_sum") - rows_before
    finally:
        server.stop(1)
    assert results.count(200) == 4 and results.count((1, 32, 32, 3)) == 4
    assert rows == 8 and calls < 4, (rows, calls)  # eight requests from both doors, merged


def test_hot_swap_under_rest_load_fails_no_request(model_dir, tmp_path):
    base = tmp_path / "facegan"
    shutil.copytree(model_dir, base)
    server = start_server(base, rest_port=0, poll_wait_s=0.05)
    failures, versions = [], []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            status, body = call(server, "/v1/models/facegan:predict", {"signature_name": "from_seed", "inputs": [1]})
            if status != 200:
                failures.append((status, body))
            versions.append(call(server, "/v1/models/facegan")[1]["model_version_status"][0]["version"])

    threads = [threading.Thread(target=load) for _ in range(3)]
    try:
        for t in threads:
            t.start()
        time.sleep(1)
        shutil.copytree(base / "1", base / ".export-2")  # published as `facegan export` does: aside, then renamed
        (base / ".export-2").rename(base / "2")
        deadline = time.time() + 60
        while "2" not in versions:
            assert time.time() < deadline
            time.sleep(0.1)
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join()
        server.stop(1)
    assert failures == [] and "1" in versions and versions[-1] == "2"


def test_rest_port_flags(model_dir):
    res = run_cli("serve", "--model-base-path", model_dir, "--port", 9123, "--rest-api-port", 9123, timeout=60)
    assert res.returncode == 2 and "must differ" in res.stderr
    res = run_cli("serve", "--model-base-path", model_dir, "--rest-api-port", 70000, timeout=60)
    assert res.returncode == 2 and "0..65535" in res.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = run_cli("serve", "--model-base-path", model_dir, "--port", 0, "--rest-api-port", port, timeout=120)
    assert res.returncode == 2 and "for REST" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_rest_client_reads_png_bytes(server):
    with RestClient(f"http://127.0.0.1:{server.rest_port}") as rest, FaceClient(f"127.0.0.1:{server.port}") as g:
        pngs = rest.predict("from_seed_png", {"seed": np.array([5, 6])})["image_bytes"]
        assert pngs.tolist() == g.predict("from_seed_png", {"seed": np.array([5, 6])})["image_bytes"].tolist()


def test_stop_answers_the_requests_in_flight_and_logs_no_traceback(model_dir, caplog):
    """A stop while REST answers were being computed and sent cut them off (IncompleteRead) and
    logged waitress's EBADF tracebacks: now the requests in progress are answered whole, new
    connections are refused, and nothing is logged but the stop."""
    import logging

    caplog.set_level(logging.INFO)
    server = start_server(model_dir, rest_port=0, poll_wait_s=0)
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/facegan:predict"
    body = json.dumps({"signature_name": "from_seed", "instances": list(range(64))}).encode()  # ~1 MB answers
    answered = dict.fromkeys(range(4), 0)
    ended = {}

    def ask(i: int) -> None:
        try:
            while True:
                faces = json.loads(urllib.request.urlopen(url, body, timeout=120).read())["predictions"]
                assert len(faces) == 64
                answered[i] += 1
        except urllib.error.URLError as e:
            ended[i] = e.reason  # the stop: a refused connection, once the door is closed
        except Exception as e:
            ended[i] = e

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    try:
        for t in threads:
            t.start()
        wait_until = time.monotonic() + 300  # a bound on a hang
        while min(answered.values()) < 1:
            assert time.monotonic() < wait_until and not ended, ended
            time.sleep(0.05)
    finally:
        server.stop(30)
        for t in threads:
            t.join(120)
    assert all(isinstance(reason, ConnectionRefusedError) for reason in ended.values()), ended
    records = [r for r in caplog.records if r.name.startswith(("waitress", "facegan"))]
    assert not [r for r in records if r.exc_info or r.levelno >= logging.WARNING], [r.getMessage() for r in records]


def _answer(url: str, method: str, headers: dict):
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def test_cors_is_tf_servings_headers_and_preflight(model_dir):
    """--rest_api_enable_cors_support as in TF Serving's http_server.cc: its three headers on
    every REST answer, and a preflight (OPTIONS) answered 200 when it has an http(s) Origin and
    400 otherwise; without the flag, no header (a preflight is still answered)."""
    from facegan.serving.rest import CORS_HEADERS

    for cors in (True, False):
        server = start_server(model_dir, rest_port=0, poll_wait_s=0, cors=cors)
        try:
            url = f"http://127.0.0.1:{server.rest_port}/v1/models/facegan"
            status, headers, _ = _answer(url, "GET", {"Origin": "http://elsewhere.example"})
            assert status == 200
            assert all(headers.get(k) == v for k, v in CORS_HEADERS) is cors
            assert ("Access-Control-Allow-Origin" in headers) is cors
            status, headers, body = _answer(url + ":predict", "OPTIONS", {"Origin": "https://elsewhere.example"})
            assert status == 200 and body == b"" and ("Access-Control-Allow-Methods" in headers) is cors
            status, _, body = _answer(url + ":predict", "OPTIONS", {})
            assert status == 400 and b"Origin header is missing in CORS preflight" in body
            status, headers, _ = _answer(url + "/versions/99", "GET", {"Origin": "http://elsewhere.example"})
            assert status == 404 and ("Access-Control-Allow-Origin" in headers) is cors  # errors too
        finally:
            server.stop(1)


@pytest.mark.slow
def test_a_page_on_another_origin_calls_the_rest_api_in_chromium(model_dir, tmp_path):
    """The browser's own rules decide: a page served from another port POSTs JSON (which needs a
    preflight) to :predict; it gets faces only when the server sends CORS headers."""
    from playwright.sync_api import sync_playwright

    from facegan.web.static_server import start

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium package is required (apt-get install chromium); .ci/run installs it"
    (tmp_path / "index.html").write_text("<!doctype html><title>elsewhere</title>")
    page_server = start(tmp_path, isolated=False)
    results = {}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{page_server.server_address[1]}/")
            for cors in (True, False):
                server = start_server(model_dir, rest_port=0, poll_wait_s=0, cors=cors)
                try:
                    url = f"http://localhost:{server.rest_port}/v1/models/facegan:predict"  # another origin
                    results[cors] = page.evaluate(
                        """async (url) => {
                            try {
                                const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                    body: JSON.stringify({signature_name: "from_seed", instances: [42]})});
                                const body = await r.json();
                                return {status: r.status, shape: [body.predictions.length, body.predictions[0].images.length]};
                            } catch (e) { return {error: String(e)}; }
                        }""",
                        url,
                    )
                finally:
                    server.stop(1)
            browser.close()
    finally:
        page_server.shutdown()
        page_server.server_close()
    assert results[True] == {"status": 200, "shape": [1, 32]}, results
    assert "error" in results[False] and "Failed to fetch" in results[False]["error"], results
