"""The static web demo (`facegan web`) in the real browser: seed 42 and an interpolation frame,
read back from the page's canvases, are `facegan serve`'s faces within 1/255 per pixel; bad
seeds get a readable message; the page works offline once loaded."""

import hashlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import run_cli, start_server, stop_process

from facegan.client import FaceClient
from facegan.gradio_demo.faces import slerp
from facegan.web.static_server import start

pytestmark = pytest.mark.slow
READ_CANVAS = """(id) => {
  const canvas = document.getElementById(id);
  return Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data);
}"""


@pytest.fixture(scope="module")
def site(trained_run, tmp_path_factory):
    base = tmp_path_factory.mktemp("web")
    res = run_cli("export", "--run", trained_run, "--format", "onnx", "--out", base / "onnx")
    assert res.returncode == 0, res.stderr[-2000:]
    res = run_cli("web", "--onnx-dir", base / "onnx", "--out", base / "site")
    assert res.returncode == 0, res.stderr[-2000:]
    assert f"built {base / 'site'}" in res.stdout
    return base / "site"


@pytest.fixture(scope="module")
def server_faces(model_dir):
    """`facegan serve`'s answers: seed 42, and the frame t = 0.5 from seed 42 to seed 7 (the demo's slerp)."""
    server = start_server(model_dir)
    try:
        with FaceClient(f"127.0.0.1:{server.port}") as client:
            faces, z = client.from_seeds([42, 7])
            frame = client.generate(slerp(z[0], z[1], np.array([0.5])))
    finally:
        server.stop(1)
    return {"seed 42": faces[0], "42 to 7 at 0.5": frame[0]}


@pytest.fixture
def page(site):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium package is required (apt-get install chromium); .ci/run installs it"
    static = start(site)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.problems = []
        page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        page.goto(f"http://127.0.0.1:{static.server_address[1]}/")
        page.wait_for_selector("body[data-ready=true]", timeout=60_000)
        yield page
        browser.close()
    static.shutdown()


def canvas_pixels(page, canvas_id: str, rendered: int = 1) -> np.ndarray:
    page.wait_for_function(f"Number(document.getElementById('{canvas_id}').dataset.rendered || 0) >= {rendered}")
    rgba = np.array(page.evaluate(READ_CANVAS, canvas_id), np.uint8)
    side = int(np.sqrt(rgba.size // 4))
    return rgba.reshape(side, side, 4)


def assert_same_face(browser: np.ndarray, server: np.ndarray) -> None:
    assert (browser[..., 3] == 255).all() and browser.shape[:2] == server.shape[:2]
    difference = np.abs(browser[..., :3].astype(int) - server.astype(int))
    print(
        f"browser vs server: max {difference.max()}/255 on {np.count_nonzero(difference)} of {difference.size} values"
    )
    assert difference.max() <= 1


def test_seed_42_in_the_browser_is_the_servers_face(page, server_faces):
    assert page.input_value("#seed") == "42"
    assert_same_face(canvas_pixels(page, "generate-canvas"), server_faces["seed 42"])
    assert (page.input_value("#seed-a"), page.input_value("#seed-b"), page.input_value("#t")) == ("42", "7", "0.5")
    assert_same_face(canvas_pixels(page, "interpolate-canvas"), server_faces["42 to 7 at 0.5"])
    facts = page.inner_text("#facts")
    assert "32 px, z of 100 numbers" in facts and "onnxruntime-web 1.30.0" in facts
    assert page.problems == []


def test_sliders_render_live_and_bad_seeds_get_a_message(page):
    before = canvas_pixels(page, "explore-canvas")
    # a user dragging the slider: its value changes and it fires "input"
    page.eval_on_selector("#z-0", "s => { s.value = '3.5'; s.dispatchEvent(new Event('input')); }")
    after = canvas_pixels(page, "explore-canvas", rendered=2)
    assert np.abs(after.astype(int) - before.astype(int)).max() > 0
    for text, words in [
        ("abc", 'must be a whole number from 0 to 2147483647, got "abc"'),
        ("1.5", "must be a whole number"),
        ("-3", "must be from 0 to 2147483647, got -3"),
        ("99999999999", "must be from 0 to 2147483647"),
        ("9" * 400, "must be a whole number"),
    ]:
        page.fill("#seed", text)
        page.wait_for_function("document.getElementById('message').textContent.length > 0")
        assert words in page.inner_text("#message"), (text, page.inner_text("#message"))
    page.fill("#seed", "42")
    page.wait_for_function("document.getElementById('message').textContent === ''")
    assert page.problems == []


def test_the_page_works_offline_once_loaded(page, server_faces):
    page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=30_000)
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    page.context.set_offline(True)
    page.reload()
    page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    assert_same_face(canvas_pixels(page, "generate-canvas"), server_faces["seed 42"])
    assert page.problems == []


def test_bad_builds_exit_2_with_one_line_and_write_nothing(site, tmp_path):
    onnx = site.parent / "onnx"
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "index.html").write_text("someone else's page")
    damaged = tmp_path / "damaged"
    shutil.copytree(onnx, damaged)
    data = bytearray((damaged / "generator.onnx").read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes
    (damaged / "generator.onnx").write_bytes(bytes(data))
    cases = [
        (("--onnx-dir", onnx, "--out", taken), "is not empty"),
        (("--onnx-dir", tmp_path / "nothing", "--out", tmp_path / "a"), "is not an export folder"),
        (("--onnx-dir", damaged, "--out", tmp_path / "b"), "does not match the SHA-256 in its card"),
        (("--onnx-dir", onnx, "--out", tmp_path / "c", "--runtime", tmp_path), "onnxruntime-web is not in"),
        (("--model", onnx, "--out", tmp_path / "d"), "here it is --onnx-dir DIR"),  # one meaning per option name
    ]
    for args, words in cases:
        res = run_cli("web", *args)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, (args, res.stderr)
        assert words in res.stderr, (args, res.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged", "taken"]
    assert [p.name for p in taken.iterdir()] == ["index.html"]


def _card_variant(onnx, folder, change):
    """A copy of the ONNX export whose card `change` rewrites (it gets the card dict and the folder)."""
    shutil.copytree(onnx, folder)
    card = json.loads((folder / "facegan.json").read_text())
    card = change(card, folder)
    (folder / "facegan.json").write_text(json.dumps(card))
    return folder


def _named(card, name, data: bytes | None = None, folder=None):
    """The card's one file renamed to `name`, its facts those of `data` (default: the model's own)."""
    ((old_name, facts),) = card["files"].items()
    if data is not None:
        facts = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    card["files"] = {name: facts}
    return card


def test_a_card_names_only_files_inside_its_folder_and_a_bad_card_is_one_line(site, tmp_path):
    """A card's file entry must point inside the export (not an absolute path, '..' or a symlink
    out), even when its SHA-256 matches; a malformed card is one line, never a raw exception."""
    onnx = site.parent / "onnx"
    secret = tmp_path / "secret.onnx"
    secret.write_bytes(b"\x08 not a model, a secret")
    model = (onnx / "generator.onnx").read_bytes()

    def symlinked(card, folder):
        (folder / "link.onnx").symlink_to(secret)
        return _named(card, "link.onnx", secret.read_bytes())

    def not_onnx(card, folder):
        (folder / "other.onnx").write_bytes(b"PK\x03\x04 a zip")
        return _named(card, "other.onnx", b"PK\x03\x04 a zip")

    variants = {
        "absolute": (lambda c, f: _named(c, str(secret), secret.read_bytes()), "outside its folder"),
        "dotdot": (lambda c, f: _named(c, "../secret.onnx", secret.read_bytes()), "outside its folder"),
        "symlink": (symlinked, "leads outside its folder"),
        "list": (lambda c, f: [c], "is not a facegan card"),
        "no-files": (lambda c, f: {k: v for k, v in c.items() if k != "files"}, "exactly one model file"),
        "two-files": (
            lambda c, f: {**c, "files": {**c["files"], "b.onnx": {"sha256": "0", "bytes": 1}}},
            "exactly one",
        ),
        "bytes": (
            lambda c, f: {**c, "files": {"generator.onnx": {**c["files"]["generator.onnx"], "bytes": 7}}},
            "not the 7 bytes",
        ),
        "huge": (
            lambda c, f: {**c, "files": {"generator.onnx": {**c["files"]["generator.onnx"], "bytes": 2**40}}},
            "at most",
        ),
        "not-onnx": (not_onnx, "is not an ONNX model"),
        "latent": (lambda c, f: {**c, "latent_dim": "100"}, "no valid 'latent_dim'"),
    }
    for name, (change, words) in variants.items():
        folder = _card_variant(onnx, tmp_path / name, change)
        res = run_cli("web", "--onnx-dir", folder, "--out", tmp_path / f"site-{name}")
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, (name, res.stderr)
        assert words in res.stderr, (name, res.stderr)
        assert not (tmp_path / f"site-{name}").exists(), name
    assert model == (onnx / "generator.onnx").read_bytes()


def _get(port: int, path: str) -> tuple[int, bytes]:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def _answered(port: int, path: str) -> bool:
    """True when `path` answers 200; False when the server closes the connection without an answer."""
    import http.client

    try:
        return _get(port, path)[0] == 200
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        time.sleep(0.05)
        return False


def _closed_by_server(sock, timeout=60) -> bool:
    """True once the server has closed `sock` (EOF or reset), False if it is still open after `timeout`."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_the_static_server_serves_the_sites_files_and_nothing_else(site, tmp_path):
    """No folder listings, a clean 400 for /%00, and a symlink inside the site never serves what
    lies outside it (/etc/passwd)."""
    served = tmp_path / "site"
    shutil.copytree(site, served)
    (served / "passwd").symlink_to("/etc/passwd")
    (served / "etc").symlink_to("/etc")
    (served / "same.json").symlink_to(served / "config.json")  # a link that stays inside is fine
    static = start(served)
    port = static.server_address[1]
    try:
        assert _get(port, "/")[0] == 200 and _get(port, "/ort/ort.wasm.min.mjs")[0] == 200
        assert _get(port, "/same.json") == (200, (served / "config.json").read_bytes())
        for path in ("/ort/", "/model/", "/passwd", "/etc/passwd", "/etc/", "/../../etc/passwd", "/%2e%2e/secret"):
            status, body = _get(port, path)
            assert status == 404 and b"root:" not in body, (path, status)
        assert _get(port, "/%00")[0] == 400
        assert _get(port, "/index.html%00.png")[0] == 400
        assert _get(port, "/")[0] == 200  # still serving
    finally:
        static.shutdown()
        static.server_close()


def _open(sock) -> bool:
    """The server has not closed `sock` (nothing to read yet, no EOF)."""
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    finally:
        sock.setblocking(True)


def test_the_static_server_bounds_its_connections(site):
    """Connections are bounded (one thread each). Connections are accepted in
    the order they are made: the two first take the slots, the third is closed at once while
    those two (whose idle deadline comes first) are still open."""
    static = start(site, max_connections=2)
    port = static.server_address[1]
    try:
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        extra = socket.create_connection(("127.0.0.1", port))
        assert _closed_by_server(extra)
        assert all(_open(sock) for sock in held)
        for sock in (*held, extra):
            sock.close()
        # the slots come back as their threads see the hang-ups; until then a new connection is
        # closed at once (no answer), as the third was; the bound is a hang guard for a busy machine
        end = time.monotonic() + 120
        while not _answered(port, "/"):
            assert time.monotonic() < end
    finally:
        static.shutdown()
        static.server_close()


def test_the_static_server_closes_idle_connections(site):
    """An idle timeout: a silent connection, or one that stops inside its headers, cannot hold
    its thread for ever."""
    static = start(site, idle_timeout_s=1.0)
    port = static.server_address[1]
    try:
        silent = socket.create_connection(("127.0.0.1", port))
        trickle = socket.create_connection(("127.0.0.1", port))
        trickle.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n")  # and never the blank line
        assert _closed_by_server(silent) and _closed_by_server(trickle)
        silent.close()
        trickle.close()
    finally:
        static.shutdown()
        static.server_close()


def test_clients_that_hang_up_cost_no_traceback(site):
    import struct

    proc = subprocess.Popen(
        [sys.executable, "-m", "facegan.web.static_server", str(site), "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = int(proc.stdout.readline().split("http://127.0.0.1:")[1].split("/")[0])
        for _ in range(40):  # ask for the 14 MB runtime, then reset the connection mid-answer
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET /ort/ort-wasm-simd-threaded.wasm HTTP/1.0\r\n\r\n")
            sock.recv(1024)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        assert _get(port, "/")[0] == 200
    finally:
        _, err = stop_process(proc, signal.SIGINT)
    assert "Traceback" not in err and err.strip() == "", err[-2000:]
