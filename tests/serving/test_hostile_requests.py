"""Hostile and broken requests, each sent through a real socket: the status, a short body, a
healthy server afterwards, and a bounded log (no traceback, at most one line per request,
rate-limited)."""

import contextlib
import json
import logging
import os
import shutil
import socket
import threading
import time

import grpc
import numpy as np
import pytest
from conftest import config_list, start_server, wait_for
from tensorflow.core.framework.tensor_pb2 import TensorProto
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from facegan.client import FaceClient
from facegan.client.errors import ServingError
from facegan.client.tensors import from_numpy
from facegan.serving.model_config import sources_from_config_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(model_dir):
    s = start_server(model_dir, rest_port=0, poll_wait_s=0)
    yield s
    s.stop(1)


def serve_log(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("facegan")]


@pytest.fixture
def one_log_window(monkeypatch):
    """The request log's rate limit with a fresh window longer than any test: a test that sends
    more requests than the window lets through sees exactly that many lines, however slow the
    machine (with the real 10 s window, a busy machine spread 100 requests over two windows)."""
    from facegan.serving.rate_limited_log import PER_WINDOW, REQUESTS_LOG, RateLimit

    monkeypatch.setattr(logging.getLogger(REQUESTS_LOG), "filters", [RateLimit(PER_WINDOW, window_s=3600.0)])


def assert_bounded(records, requests: int) -> None:
    """No traceback, and at most one line per request (fewer once the rate limit holds them back:
    with `one_log_window`, 20 request lines and one other)."""
    assert all(r.exc_info is None and "Traceback" not in r.getMessage() for r in records), records
    assert len(records) <= min(requests, 21), len(records)
    assert all(len(r.getMessage()) < 600 for r in records), max(len(r.getMessage()) for r in records)


def raw_http(port: int, request: bytes, timeout: float = 10) -> tuple[int, bytes]:
    """(status, body) of one raw HTTP/1.1 request; the connection is closed after it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def get(port: int, path: bytes) -> tuple[int, bytes]:
    return raw_http(port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


def healthy(server) -> bool:
    status, body = get(server.rest_port, b"/v1/models/facegan")
    with FaceClient(f"127.0.0.1:{server.port}") as client:
        faces = client.from_seeds([1])[0]
    return status == 200 and b"AVAILABLE" in body and faces.shape == (1, 32, 32, 3)


def test_absurd_versions_and_long_urls_get_a_short_4xx(server, caplog, one_log_window):
    """Absurd version numbers (too long for int(): 4,301 nines) and huge URLs get a short 400 or
    404, never a 500 with a traceback."""
    caplog.set_level(logging.INFO)
    paths = [
        b"/v1/models/facegan/versions/" + b"9" * 4301,
        b"/v1/models/facegan/versions/" + b"0" * 5000 + b"2",  # version 2 (not served), int() never sees the zeros
        b"/v1/models/facegan/versions/" + b"9" * 20 + b"/metadata",
        b"/v1/models/" + b"x" * 60_000,
    ]
    for path in paths * 25:
        status, body = get(server.rest_port, path)
        assert status in (400, 404), (status, body[:200])
        assert len(body) < 400 and b"error" in body, body[:200]
    assert healthy(server)
    assert_bounded(serve_log(caplog), 100)


SEGMENTS = [b"x" * 50_000, "é€😀".encode(), b"%2F", b"..", b"%00", b"-1", b"1e3", b"%2e%2e", b"\xff\xfe"]
ROUTES = [
    b"/v1/models/{}",
    b"/v1/models/facegan/versions/{}",
    b"/v1/models/facegan/labels/{}",
    b"/v1/models/{}/metadata",
    b"/v1/models/facegan/versions/{}/metadata",
    b"/v1/models/facegan:{}",
    b"/v1/{}",
    b"/{}",
]


def test_every_route_with_absurd_segments_answers_4xx(server, caplog, one_log_window):
    caplog.set_level(logging.INFO)
    count = 0
    for route in ROUTES:
        for segment in SEGMENTS:
            path = route.replace(b"{}", segment)
            for method in (b"GET", b"POST"):
                body = b'{"instances": [1]}'
                request = (
                    method + b" " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                )
                status, answer = raw_http(server.rest_port, request)
                count += 1
                assert 400 <= status < 500, (method, path[:80], status, answer[:200])
    assert healthy(server)
    assert_bounded(serve_log(caplog), count)


def test_typed_integers_out_of_range_are_invalid_argument(server, caplog, one_log_window):
    """A value out of its dtype's range (int_val 300 for a uint8 image) is INVALID_ARGUMENT, not INTERNAL."""
    caplog.set_level(logging.INFO)
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for value in (300, -1, 2**31 - 1, -(2**31)) * 10:
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "facegan"
            request.model_spec.signature_name = "project"
            image = request.inputs["image"]
            image.dtype = 4  # DT_UINT8
            for size in (1, 32, 32, 3):
                image.tensor_shape.dim.add(size=size)
            image.int_val.append(value)  # one value fills the tensor
            with pytest.raises(grpc.RpcError) as e:
                stub.Predict(request, timeout=30)
            assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value.details()
            details = e.value.details()
            assert "'image'" in details and f"int_val value {value} is out of range for uint8 (0..255)" in details
            assert len(details) < 300
    assert healthy(server)
    assert_bounded(serve_log(caplog), 40)


def test_a_body_of_exactly_the_limit_is_read(server):
    """A body of exactly MAX_BODY_BYTES is accepted; one byte more is 413."""
    from facegan.serving.rest import MAX_BODY_BYTES

    payload = b'{"signature_name": "from_seed", "instances": [7]}'
    for size, want in ((MAX_BODY_BYTES, 200), (MAX_BODY_BYTES + 1, 413)):
        body = payload + b" " * (size - len(payload))
        request = (
            b"POST /v1/models/facegan:predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            b"Content-Length: " + str(size).encode() + b"\r\n\r\n" + body
        )
        try:
            status, answer = raw_http(server.rest_port, request, timeout=60)
        except ConnectionResetError:  # waitress may close before reading all of an oversized body
            status, answer = 413, b""
        assert status == want, (size, status, answer[:200])
    assert healthy(server)


def test_a_config_file_that_is_not_text_is_one_line_and_later_edits_apply(model_dir, tmp_path, caplog):
    """The config watcher survives bytes that are not UTF-8 (later edits still apply), and a
    deleted config file is logged once, not at every poll."""
    caplog.set_level(logging.INFO)
    models = tmp_path / "facegan"
    shutil.copytree(model_dir, models)
    config = tmp_path / "models.config"
    config.write_text(config_list(models, "facegan"))
    server = start_server(None, sources=sources_from_config_file(config), config_file=config, config_poll_s=0.05)
    try:
        config.write_bytes(b"\xff")
        time.sleep(0.5)  # ten polls
        problems = [r for r in serve_log(caplog) if r.levelno >= logging.ERROR]
        assert len(problems) == 1 and "not UTF-8" in problems[0].getMessage(), problems
        assert server.manager.available() == {"facegan": [1]}  # the running config is kept
        config.write_text(config_list(models, "facegan", "faces2"))  # a later edit applies
        wait_for(lambda: server.manager.available() == {"facegan": [1], "faces2": [1]})
        config.unlink()
        time.sleep(0.5)
        deleted = [r for r in serve_log(caplog) if "No such file" in r.getMessage()]
        assert len(deleted) == 1, deleted
        config.write_text(config_list(models, "faces2"))  # back, with facegan removed
        wait_for(lambda: server.manager.available() == {"faces2": [1]})
        with FaceClient(f"127.0.0.1:{server.port}", model="faces2") as client:
            assert client.from_seeds([3])[0].shape == (1, 32, 32, 3)
        assert_bounded([r for r in serve_log(caplog) if r.levelno >= logging.WARNING], 3)
    finally:
        server.stop(1)


def test_typed_integers_in_range_decode_as_before():
    from facegan.client.tensors import to_numpy

    proto = predict_pb2.PredictRequest().inputs["x"]
    proto.dtype = 4
    proto.tensor_shape.dim.add(size=3)
    proto.int_val.extend([0, 128, 255])
    np.testing.assert_array_equal(to_numpy(proto), np.array([0, 128, 255], np.uint8))


def project_request(face: np.ndarray, steps: int) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "facegan"
    request.model_spec.signature_name = "project_steps"
    request.inputs["image"].CopyFrom(from_numpy(face[None], TensorProto))
    request.inputs["steps"].CopyFrom(from_numpy(np.asarray(steps, np.int32), TensorProto))
    return request


def test_projections_never_starve_generation_and_excess_is_refused(model_dir):
    """Generation never waits behind projections. The method, asserted by order of events
    rather than by timings (the latency figures are bench/beside_projections.py's): while a long
    projection runs, generation on both doors is answered; two more projections wait; any more are
    refused at once (they come back while the first still runs); abandoned ones free the queue."""
    from facegan.client import RestClient

    server = start_server(model_dir, rest_port=0, poll_wait_s=0)
    grpc_address = f"127.0.0.1:{server.port}"
    rest_address = f"http://127.0.0.1:{server.rest_port}"
    face = np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)
    channel = grpc.insecure_channel(grpc_address)
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    try:
        # project_steps(500), the most steps allowed, takes ~9 s here: several times what this test needs
        first = stub.Predict.future(project_request(face, 500), timeout=120)
        wait_for(lambda: server.projections.counts() == (1, 0))
        with FaceClient(grpc_address) as g, RestClient(rest_address) as r:
            for seed in range(20):
                assert g.from_seeds([seed])[0].shape == (1, 32, 32, 3)
                assert r.from_seeds([seed])[0].shape == (1, 32, 32, 3)
        assert not first.done() and server.projections.counts() == (1, 0)  # generation did not wait for it

        waiting = [stub.Predict.future(project_request(face, 500), timeout=120) for _ in range(2)]
        wait_for(lambda: server.projections.counts() == (1, 2))
        refusals = []
        with FaceClient(grpc_address, retries=0) as g, RestClient(rest_address, retries=0) as r:
            for client in (g, r, g, r):
                with pytest.raises(ServingError) as e:
                    client.project(face, steps=20)
                refusals.append((e.value.code, e.value.message))
        assert all(
            code == grpc.StatusCode.UNAVAILABLE and "is busy (1 running, 2 waiting)" in message
            for code, message in refusals
        ), refusals
        assert not first.done()  # refused at once, not after a turn
        with FaceClient(grpc_address) as g:  # and generation still answers with the gate full
            assert g.from_seeds([7])[0].shape == (1, 32, 32, 3)

        for call in [first, *waiting]:
            assert call.cancel()
        wait_for(
            lambda: server.projections.counts() == (0, 0), timeout=120
        )  # a hang guard: the child stops within a step
        with FaceClient(grpc_address, retries=0, timeout=60) as g:
            assert g.project(face, steps=20).image.shape == (32, 32, 3)  # the gate is free again
        assert healthy(server)
    finally:
        channel.close()
        server.stop(1)


def test_an_abandoned_projection_stops(model_dir, monkeypatch):
    """A projection whose client gave up must not run on and hold the next one back: each
    abandoned projection ends stopped (the projection process answers "cancelled"), not run to
    its 500th step, before the next one is asked for."""
    from facegan.serving.projections import worker
    from facegan.serving.projections.cancel import CancelledCall

    outcomes = []  # (steps, how the projection process ended it)
    call = worker.ProjectionWorker.call

    def recorded(self, signature, inputs, *args):
        steps = int(inputs["steps"])
        try:
            answer = call(self, signature, inputs, *args)
        except CancelledCall:
            outcomes.append((steps, "stopped"))
            raise
        outcomes.append((steps, "answered"))
        return answer

    monkeypatch.setattr(worker.ProjectionWorker, "call", recorded)
    server = start_server(model_dir, rest_port=0, poll_wait_s=0)
    address = f"127.0.0.1:{server.port}"
    face = np.random.default_rng(1).integers(0, 255, (32, 32, 3), np.uint8)
    try:
        with FaceClient(address, retries=0, timeout=300) as client:
            client.project(face, steps=20)  # the projection process is up: what follows is projections alone
        for _ in range(3):
            with FaceClient(address, retries=0, timeout=0.3) as hasty, pytest.raises(ServingError) as e:
                hasty.project(face, steps=500)
            assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
            wait_for(lambda: server.projections.counts() == (0, 0), timeout=120)  # it ended, one way or the other
            with FaceClient(address, retries=0, timeout=300) as client:
                client.project(face, steps=20)
        # a client that cancels (rather than times out) stops its projection too
        request = project_request(face, 500)
        with grpc.insecure_channel(address) as channel:
            future = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict.future(request, timeout=300)
            wait_for(lambda: server.projections.counts() == (1, 0), timeout=120)  # it is running
            assert future.cancel()
        wait_for(lambda: server.projections.counts() == (0, 0), timeout=120)
        # (a hasty call can also be dropped before it reaches the process: nothing recorded then)
        assert (500, "answered") not in outcomes, outcomes
        assert [o for o in outcomes if o[0] == 20] == [(20, "answered")] * 4, outcomes
        assert healthy(server)
    finally:
        server.stop(1)


def test_slow_clients_cannot_close_the_rest_door(server, caplog, monkeypatch):
    """300 connections trickling a header byte every few seconds (over the 256-connection
    limit), then 8 clients pipelining large predicts that never read: a real client is still
    answered while all of them are there, and the tricklers are then closed by the header deadline.
    Asserted as events, whatever the machine's speed: the header deadline is out of reach while
    the real client asks (so its answers owe nothing to it), then brought back, and every trickler
    is closed."""
    from facegan.serving import http_guard

    caplog.set_level(logging.INFO)
    monkeypatch.setattr(http_guard, "HEADER_TIMEOUT_S", 3600.0)
    port = server.rest_port
    tricklers = []
    for _ in range(300):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /v1/models/facegan HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        tricklers.append(s)
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(2.0):
            for s in tricklers:
                with contextlib.suppress(OSError):  # closed by the server: the point
                    s.sendall(b"a")

    def real_client() -> int:
        request = b"GET /v1/models/facegan HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        return raw_http(port, request, timeout=120)[0]  # a bound on a hang, not a speed

    def closed(sockets) -> int:
        count = 0
        for s in sockets:
            s.setblocking(False)
            try:
                count += s.recv(1) == b""
            except BlockingIOError:
                pass
            except OSError:
                count += 1
        return count

    thread = threading.Thread(target=trickle)
    thread.start()
    hogs = []
    try:
        assert [real_client() for _ in range(5)] == [200] * 5
        big = b'{"signature_name": "from_seed", "instances": [' + b",".join(b"%d" % i for i in range(64)) + b"]}"
        predict = (
            b"POST /v1/models/facegan:predict HTTP/1.1\r\nHost: x\r\nContent-Length: "
            + str(len(big)).encode()
            + b"\r\n\r\n"
            + big
        )
        for _ in range(8):  # each pipelines 100 predicts of 64 faces and never reads an answer
            s = socket.create_connection(("127.0.0.1", port))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):  # the server stopped reading: its output is unread
                s.sendall(predict * 100)
            hogs.append(s)
        # Each gets a few answers computed before 2 MiB sit unsent and its pipeline is dropped
        # (http_guard's MAX_UNSENT_BYTES): a burst any 8 clients could ask for; the real client's
        # requests are answered beside it.
        assert [real_client() for _ in range(5)] == [200] * 5
        assert closed(tricklers) < len(tricklers)  # answered while the crowd was still there
        monkeypatch.setattr(http_guard, "HEADER_TIMEOUT_S", 1.0)  # the tricklers' headers are overdue now
        wait_for(lambda: closed(tricklers) == len(tricklers), timeout=120)
    finally:
        stop.set()
        thread.join()
        for s in tricklers + hogs:
            s.close()
    assert healthy(server)
    records = serve_log(caplog)
    assert all(r.exc_info is None for r in records) and len(records) <= 42, len(records)


def test_health_is_per_model_and_the_replica_serves_while_any_model_can(model_dir, tmp_path):
    """A broken model no longer makes the whole replica NOT_SERVING (with 500 empty entries that
    lasted 30 s): "" says whether the replica can answer anything, each model's name whether it can."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    good = tmp_path / "good"
    shutil.copytree(model_dir, good)
    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    shutil.rmtree(broken / "1" / "variables")
    config = tmp_path / "models.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "facegan" base_path: "{good}" model_platform: "tensorflow" }}\n'
        f'  config {{ name: "broken" base_path: "{broken}" model_platform: "tensorflow" }}\n'
        "}\n"
    )
    server = start_server(None, sources=sources_from_config_file(config), config_file=config, config_poll_s=0.05)
    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)

            def status(service: str) -> int:
                return health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status

            assert status("") == serving and status("tensorflow.serving.PredictionService") == serving
            assert status("facegan") == serving and status("broken") == not_serving
            config.write_text(config_list(broken, "broken"))  # only the broken model is left
            wait_for(lambda: status("") == not_serving)
            assert status("facegan") == not_serving and status("broken") == not_serving
            config.write_text(config_list(good, "facegan"))
            wait_for(lambda: status("") == serving)
            assert status("facegan") == serving
            with pytest.raises(grpc.RpcError) as e:
                status("never-configured")
            assert e.value.code() == grpc.StatusCode.NOT_FOUND
    finally:
        server.stop(1)


def test_a_flood_of_invented_input_names_is_refused_cheaply(server):
    """A body naming 300,000 distinct inputs costs little: the names are counted, five shown,
    nothing converted (no array per name, no sort of all of them)."""
    invented = {f"in{i}": 1 for i in range(250_000)}
    body = json.dumps({"inputs": invented}).encode()
    assert len(body) < 4 * 2**20
    request = (
        b"POST /v1/models/facegan:predict HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    status, answer = raw_http(server.rest_port, request, timeout=120)
    assert status == 400 and b"unexpected ['in0', 'in1', 'in10', 'in100', 'in1000'] and 249995 more" in answer
    assert len(answer) < 400, answer[:200]
    assert healthy(server)


def test_the_rest_loop_survives_a_descriptor_closed_under_it(model_dir, caplog, monkeypatch):
    """A connection's descriptor closed behind waitress's back would leave select() failing with
    EBADF on every pass, the REST door dead for good: the dead entry is dropped with one line and
    the door keeps answering."""
    from facegan.serving.rate_limited_log import REQUESTS_LOG

    caplog.set_level(logging.INFO)
    monkeypatch.setattr(logging.getLogger(REQUESTS_LOG), "filters", [])  # earlier tests' floods: no window to wait out
    server = start_server(model_dir, rest_port=0, poll_wait_s=0)

    def dropped():
        return [r for r in serve_log(caplog) if "was closed under the event loop" in r.getMessage()]

    try:
        held = socket.create_connection(("127.0.0.1", server.rest_port))
        held.sendall(b"GET /v1/models/facegan HTTP/1.1\r\nHost: x\r\n\r\n")
        assert held.recv(65536).startswith(b"HTTP/1.1 200")
        sockets = server._rest._sockets
        wait_for(lambda: any(type(d).__name__ == "GuardedChannel" for d in sockets.values()))
        channel = next(d for d in sockets.values() if type(d).__name__ == "GuardedChannel")
        # The loop's entry moves to a copy of the descriptor at a high number before both are closed.
        # Descriptors are handed out lowest first, so no other thread (the poll thread lists folders
        # nonstop, gRPC opens sockets) is given that number back: the loop must find it closed. A
        # freed low number was often reused at once, and then the loop saw a live descriptor.
        high = 1000  # below select()'s limit of 1024
        assert max(int(n) for n in os.listdir("/proc/self/fd")) < high
        os.dup2(channel.socket.fileno(), high)
        sockets[high] = channel
        sockets.pop(channel._fileno)
        channel._fileno = high
        os.close(channel.socket.detach())  # the socket object forgets it: no second close
        os.close(high)
        held.close()
        # the loop's next select() finds it (it runs each second at most); the bound is for a machine
        # so busy that the loop's thread waits long for a core
        wait_for(dropped, timeout=120)
        status, _ = get(server.rest_port, b"/v1/models/facegan")
        assert status == 200
        assert len(dropped()) == 1 and "descriptor 1000 (GuardedChannel)" in dropped()[0].getMessage()
        assert healthy(server)
    finally:
        server.stop(1)


def test_rest_requests_get_the_rest_api_timeout(model_dir):
    """REST has no client deadline: every request gets --rest-api-timeout-in-ms (TF Serving's flag,
    30 s by default). A projection past it is stopped and answered as a timeout, also when the
    deadline passed while the projection process was still starting (its cancel overtook the call)."""
    from facegan.client import RestClient

    face = np.random.default_rng(2).integers(0, 255, (32, 32, 3), np.uint8)
    server = start_server(model_dir, rest_port=0, poll_wait_s=0, rest_timeout_s=0.5)
    try:
        with RestClient(f"http://127.0.0.1:{server.rest_port}", retries=0, timeout=60) as client:
            with pytest.raises(ServingError) as e:
                client.project(face, steps=500)  # ~9 s of work
            assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED, e.value
            wait_for(lambda: server.projections.counts() == (0, 0), timeout=120)  # stopped, not left running
            assert client.from_seeds([1])[0].shape == (1, 32, 32, 3)
    finally:
        server.stop(1)
