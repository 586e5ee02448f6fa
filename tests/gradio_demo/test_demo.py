"""`facegan demo` end to end: gradio_client and a real browser against a real `facegan serve`."""

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import free_port, start_server
from PIL import Image

from facegan.client import FaceClient
from facegan.images import load_png

pytestmark = pytest.mark.slow


class Stack:
    """A facegan serve that can be stopped and restarted on its port, and the demo in front of it."""

    def __init__(self, model_dir, tmp):
        from facegan.gradio_demo.app import build_app, launch
        from facegan.gradio_demo.faces import FaceSource

        self.model_dir = model_dir
        self.grpc_port = free_port()
        self.start_server()
        self.address = f"127.0.0.1:{self.grpc_port}"
        self.app = build_app(FaceSource(self.address, timeout=3), out_dir=str(tmp))
        launch(self.app, "127.0.0.1", free_port(), prevent_thread_lock=True)
        self.url = self.app.local_url

    def start_server(self):
        self.server = start_server(self.model_dir, port=self.grpc_port)

    def close(self):
        self.app.close()
        self.server.stop(1)


@pytest.fixture(scope="module")
def stack(model_dir, tmp_path_factory):
    s = Stack(model_dir, tmp_path_factory.mktemp("demo"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def client(stack):
    from gradio_client import Client

    return Client(stack.url, verbose=False)


def gallery_images(gallery):
    return [np.asarray(Image.open(item["image"]).convert("RGB")) for item in gallery]


def test_generate_is_deterministic_and_fetched_from_the_server(client, stack):
    gallery, grid, status = client.predict(10, 4, 1.0, "latest", api_name="/generate")
    again, _, _ = client.predict(10, 4, 1.0, "latest", api_name="/generate")
    assert [open(a["image"], "rb").read() for a in gallery] == [open(b["image"], "rb").read() for b in again]
    assert [item["caption"] for item in gallery] == ["seed 10", "seed 11", "seed 12", "seed 13"]
    faces = gallery_images(gallery)
    with FaceClient(stack.address) as c:
        expected, _ = c.from_seeds([10, 11, 12, 13])
    np.testing.assert_array_equal(np.stack(faces), expected)
    shifted, _, _ = client.predict(11, 2, 1.0, "latest", api_name="/generate")
    np.testing.assert_array_equal(gallery_images(shifted)[0], faces[1])  # seed s+1 is the next face
    assert not np.array_equal(faces[0], faces[1])
    assert load_png(grid).shape == (2 * 32 + 3 * 4, 2 * 32 + 3 * 4, 3)
    assert "4 faces from **facegan** version 1" in status


def test_truncation_scales_z(client):
    zero, _, _ = client.predict(3, 3, 0.0, "latest", api_name="/generate")
    faces = gallery_images(zero)
    assert all(np.array_equal(f, faces[0]) for f in faces)  # psi 0: every seed becomes z = 0
    half, _, _ = client.predict(3, 1, 0.5, "latest", api_name="/generate")
    full, _, _ = client.predict(3, 1, 1.0, "latest", api_name="/generate")
    assert not np.array_equal(gallery_images(half)[0], gallery_images(full)[0])


def test_interpolation_ends_are_the_two_seeds(client, stack):
    strip, gif, status = client.predict(5, 9, 6, "latest", api_name="/interpolate")
    strip = load_png(strip)  # six faces shown at 128 px (each pixel a 4x4 block), 2 px apart
    assert strip.shape == (128 + 4, 6 * (128 + 2) + 2, 3)
    frames = [strip[2:130:4, 2 + i * 130 : 130 + i * 130 : 4] for i in range(6)]
    with FaceClient(stack.address) as c:
        ends, _ = c.from_seeds([5, 9])
    np.testing.assert_array_equal(frames[0], ends[0])
    np.testing.assert_array_equal(frames[-1], ends[1])
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 6
    assert "6 faces" in status


def test_explore_changes_one_number(client):
    gallery, status = client.predict(7, 42, -2.0, 2.0, 5, "latest", api_name="/explore")
    assert [item["caption"] for item in gallery] == [f"z[42] = {v:+.2f}" for v in np.linspace(-2, 2, 5)]
    faces = gallery_images(gallery)
    assert not np.array_equal(faces[0], faces[-1])


@pytest.mark.parametrize(
    "api, args, words",
    [
        ("/generate", (-1, 4, 1.0, "latest"), "seed must be between 0 and 2147483647"),
        ("/generate", (1.5, 4, 1.0, "latest"), "seed must be a whole number"),
        ("/interpolate", (1, 2**31, 4, "latest"), "second seed must be between"),
        ("/explore", (1, 100, -1.0, 1.0, 4, "latest"), "dimension must be between 0 and 99"),
        ("/explore", (1, 3, 2.0, 1.0, 4, "latest"), "the range must satisfy"),
    ],
)
def test_bad_input_gets_a_readable_message(client, api, args, words):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as e:
        client.predict(*args, api_name=api)
    assert words in str(e.value) and "Traceback" not in str(e.value)


@pytest.mark.parametrize(
    "api, args",
    [
        ("/generate", (0, 99, 1.0, "latest")),
        ("/interpolate", (0, 1, 40, "latest")),
        ("/generate", (0, 4, 1.5, "latest")),
    ],
)
def test_out_of_range_sliders_are_rejected(client, api, args):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="greater than maximum value"):
        client.predict(*args, api_name=api)


def test_face_source_checks_what_the_page_cannot():
    from facegan.gradio_demo.faces import DemoError, FaceSource

    source = FaceSource("127.0.0.1:1")  # never contacted: every call below fails validation first
    for call, words in [
        (lambda: source.seeds(0, 17), "count must be between 1 and 16"),
        (lambda: source.seeds(0, 2, truncation=2), "truncation"),
        (lambda: source.interpolate(0, 1, 33), "steps must be between 2 and 32"),
        (lambda: source.seeds("x", 1), "whole number"),
        (lambda: source.seeds(float("nan"), 1), "whole number"),
    ]:
        with pytest.raises(DemoError, match=words):
            call()


def test_model_panel_and_version_pin(client):
    text, dropdown = client.predict(api_name="/model_info")
    assert "| 1 | AVAILABLE |" in text and "`from_seed`" in text and "seed: int64 [-1]" in text
    gallery, _, status = client.predict(2, 1, 1.0, "1", api_name="/generate")
    assert len(gallery) == 1 and "version 1" in status


def test_server_down_then_back(client, stack):
    from gradio_client.exceptions import AppError

    stack.server.stop(1)
    try:
        with pytest.raises(AppError) as e:
            client.predict(0, 2, 1.0, "latest", api_name="/generate")
        assert "is not answering" in str(e.value) and "works again" in str(e.value)
        text, _ = client.predict(api_name="/model_info")
        assert "is not answering" in text  # the panel says so instead of failing
    finally:
        stack.start_server()
    end = time.monotonic() + 120  # a bound on a hang, not a speed
    while True:  # the demo was not restarted: its channel reconnects by itself
        try:
            gallery, _, _ = client.predict(0, 2, 1.0, "latest", api_name="/generate")
            break
        except AppError:
            assert time.monotonic() < end, "the demo did not recover after the server came back"
            time.sleep(0.5)
    assert len(gallery) == 2


def test_browser_renders_a_face(stack, tmp_path):
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium package is required (apt-get install chromium); .ci/run installs it"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(stack.url)
            # the page opens with faces: seed 0's, fetched on load, before anything is clicked
            page.locator("#gallery img").first.wait_for(state="visible", timeout=30_000)
            assert "seed 0" in page.locator("#gallery").inner_text()
            seed = page.locator("#seed input")
            seed.fill("42")
            seed.press("Enter")
            page.locator("#generate").click()
            first = page.locator("#gallery img").first
            first.wait_for(state="visible", timeout=30_000)
            page.wait_for_function(
                "() => { const i = document.querySelector('#gallery img');"
                " return i && i.complete && i.naturalWidth > 0; }",
                timeout=30_000,
            )
            page.wait_for_function(
                "() => document.querySelector('#gallery').innerText.includes('seed 42')", timeout=30_000
            )
            page.wait_for_timeout(500)
            page.screenshot(path=str(tmp_path / "demo.png"), full_page=True)
            first.screenshot(path=str(tmp_path / "face.png"))
            assert "seed 42" in page.locator("#gallery").inner_text()
        finally:
            browser.close()
    face = np.asarray(Image.open(tmp_path / "face.png").convert("L"), np.float32)
    assert face.shape[0] >= 32 and face.std() > 5  # a rendered face, not a blank box


@pytest.mark.parametrize(
    "api, args, words",
    [
        ("/generate", ("abc", 4, 1.0, "latest"), "seed (0 … 2147483647) must be a number"),
        ("/generate", (1, "many", 1.0, "latest"), "faces (seed, seed+1, …) must be a number"),
        ("/generate", (1, 4, "x", "latest"), "truncation ψ (scales z) must be a number"),
        ("/explore", (1, 3, "low", 1.0, 4, "latest"), "from must be a number"),
        ("/generate", (2**31 - 2, 4, 1.0, "latest"), "seeds end at 2147483647: from seed 2147483646 there are 2"),
    ],
)
def test_non_numeric_input_and_the_seed_range_name_the_field(client, api, args, words):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as e:
        client.predict(*args, api_name=api)
    assert words in str(e.value) and "upstream" not in str(e.value)


def test_uploads_are_capped(stack):
    """The one upload is Find a face's photo: a photo-sized file is taken, one just over the cap
    gets 413, and a 20 MB one is cut off (413 or a reset connection) with nothing stored."""
    import urllib.error
    import urllib.request

    from gradio.utils import get_upload_folder

    from facegan.gradio_demo.app import MAX_UPLOAD

    cap = int(MAX_UPLOAD.removesuffix("mb")) * 1024 * 1024

    def upload(size):
        body = b'--x\r\nContent-Disposition: form-data; name="files"; filename="a.bin"\r\n\r\n'
        body += b"\0" * size + b"\r\n--x--\r\n"
        url = f"{stack.url.rstrip('/')}/gradio_api/upload"
        headers = {"Content-Type": "multipart/form-data; boundary=x"}
        return urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=60)

    def big_files():
        return sorted(p for p in Path(get_upload_folder()).rglob("*") if p.is_file() and p.stat().st_size > cap)

    assert upload(64 * 1024).status == 200
    before = big_files()
    with pytest.raises(urllib.error.HTTPError) as e:
        upload(cap + 1024)
    assert e.value.code == 413
    with pytest.raises(urllib.error.URLError) as e:  # HTTPError is a URLError too
        upload(20_000_000)
    assert getattr(e.value, "code", 413) == 413
    assert big_files() == before


def test_disk_use_is_bounded(model_dir, tmp_path, monkeypatch):
    """200 calls leave at most KEEP_DOWNLOADS downloads and as many copies of them in Gradio's cache,
    and Gradio's cache of the faces it sent is swept. (A cache folder of its own: Gradio's files are
    content-addressed, so in a shared one a face another test sent would not look new.)"""
    from gradio_client import Client

    from facegan.gradio_demo.app import DOWNLOAD_PREFIX, KEEP_DOWNLOADS, build_app, launch, sweep_gradio_cache
    from facegan.gradio_demo.faces import FaceSource

    cache = tmp_path / "gradio-cache"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(cache))
    downloads = tmp_path / "downloads"
    server = start_server(model_dir)
    app = build_app(FaceSource(f"127.0.0.1:{server.port}", timeout=10), out_dir=str(downloads))
    assert Path(app.GRADIO_CACHE) == cache
    sweeper = sweep_gradio_cache(every_s=1, age_s=2)

    def cached(faces: bool) -> list[Path]:
        return [p for p in cache.rglob("*") if p.is_file() and p.name.startswith(DOWNLOAD_PREFIX) != faces]

    try:
        launch(app, "127.0.0.1", free_port(), prevent_thread_lock=True)
        client = Client(app.local_url, verbose=False)
        client.predict(0, 1, 1.0, "latest", api_name="/generate")
        assert cached(faces=True)  # Gradio cached the face it sent
        for seed in range(1, 200):
            client.predict(seed, 1, 1.0, "latest", api_name="/generate")
        assert len(list(downloads.iterdir())) + len(cached(faces=False)) <= 2 * KEEP_DOWNLOADS + 2
        assert len(list(downloads.iterdir())) <= 2 * KEEP_DOWNLOADS  # (+2: the last copy, made after pruning)
        deadline = time.time() + 90  # the sweep runs every second, but on a busy 2-core machine it can lag
        while cached(faces=True):  # every face Gradio cached is swept
            assert time.time() < deadline, "Gradio's cache was not swept"
            time.sleep(0.5)
    finally:
        sweeper.stop()
        app.close()
        server.stop(1)


def test_the_cache_sweep_keeps_the_folder_under_its_byte_budget(tmp_path):
    """A burst of large uploads cannot fill the disk until the age limit: the sweep also deletes
    the oldest files beyond the folder's byte budget."""
    import os

    from facegan.gradio_demo.app import CacheSweeper

    now = time.time()
    for i in range(30):
        upload = tmp_path / f"upload{i:02d}" / "photo.png"
        upload.parent.mkdir()
        upload.write_bytes(b"\0" * 100_000)
        os.utime(upload, (now - 30 + i, now - 30 + i))  # one a second, oldest first
    (tmp_path / "old.png").write_bytes(b"\0" * 10)
    os.utime(tmp_path / "old.png", (now - 4000, now - 4000))
    CacheSweeper(tmp_path, age_s=600, max_bytes=1_000_000).sweep()
    left = sorted(p.parent.name for p in tmp_path.rglob("*.png"))
    assert left == [f"upload{i:02d}" for i in range(20, 30)]  # the newest ten: 1,000,000 bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == left  # emptied folders removed, old.png gone


def test_the_cache_sweep_never_removes_a_folder_gradio_just_made(tmp_path):
    """Gradio makes a file's folder, then writes the file into it; a sweep in between removed the
    new, still empty folder and the write failed (FileNotFoundError: a clean-clone run of the
    suite, test_disk_use_is_bounded). Now an empty folder goes only once it is old."""
    import os

    from facegan.gradio_demo.app import CacheSweeper

    now = time.time()
    (tmp_path / "just-made").mkdir()  # Gradio is about to write into it
    (tmp_path / "long-empty").mkdir()
    os.utime(tmp_path / "long-empty", (now - 4000, now - 4000))
    old_file = tmp_path / "expired" / "image.webp"
    old_file.parent.mkdir()
    old_file.write_bytes(b"face")
    os.utime(old_file, (now - 4000, now - 4000))
    os.utime(old_file.parent, (now - 4000, now - 4000))
    sweeper = CacheSweeper(tmp_path, age_s=600)
    sweeper.sweep()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["expired", "just-made"]  # expired: its file went now
    assert not old_file.exists()
    os.utime(old_file.parent, (now - 4000, now - 4000))  # ... and later its folder is old and empty too
    sweeper.sweep()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["just-made"]


def test_the_first_find_a_face_waits_for_the_projection_process(model_dir, tmp_path):
    """A projection has its own deadline (PROJECT_TIMEOUT_S), long enough for a fresh server to
    start its projection process (TensorFlow's import and the model's load). Here the demo's own
    deadline is 1 s, shorter than any such start, and the first Find a face still succeeds."""
    from facegan.gradio_demo.faces import FaceSource

    server = start_server(model_dir)
    try:
        address = f"127.0.0.1:{server.port}"
        with FaceClient(address) as client:
            faces, _ = client.from_seeds([3])
        photo = tmp_path / "photo.png"
        Image.fromarray(faces[0]).save(photo)
        source = FaceSource(address, timeout=1.0)
        target, found, version = source.project(str(photo), 5)
        assert target.shape == found.image.shape == (32, 32, 3) and version == 1
    finally:
        server.stop(1)


def test_a_projection_past_its_deadline_is_not_called_a_server_that_is_down(model_dir, tmp_path):
    from facegan.gradio_demo.faces import DemoError, FaceSource

    server = start_server(model_dir)
    try:
        address = f"127.0.0.1:{server.port}"
        photo = tmp_path / "photo.png"
        Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(photo)
        with pytest.raises(DemoError) as raised:
            FaceSource(address, project_timeout=0.001).project(str(photo), 5)
        assert f"The face server at {address} is up, but finding the face took longer than 0.001 s" in str(raised.value)
    finally:
        server.stop(1)
    with pytest.raises(DemoError, match="is not answering"):  # and a server that is down still is one
        FaceSource(address, project_timeout=0.5).project(str(photo), 5)


def documented_example() -> str:
    """The gradio_client example in docs/demo.md, as the page shows it."""
    import re

    from conftest import ROOT

    text = (ROOT / "docs" / "demo.md").read_text()
    (code,) = [block for block in re.findall(r"```python\n(.*?)```", text, re.S) if "gradio_client" in block]
    return code


def test_the_documented_gradio_client_example_runs(stack, capsys):
    """docs/demo.md's gradio_client call, run as written with this test's URL and one of Find a
    face's example photos."""
    from facegan.gradio_demo.app import EXAMPLE_PHOTOS

    code = documented_example()
    assert 'Client("http://127.0.0.1:7860/")' in code and 'handle_file("photo.jpg")' in code
    code = code.replace("http://127.0.0.1:7860/", stack.url).replace('"photo.jpg"', repr(str(EXAMPLE_PHOTOS[0])))
    exec(compile(code, "docs/demo.md", "exec"), {})
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("Loaded as API")]
    assert lines[0].startswith("8 faces;") and "version 1" in lines[0], lines
    assert lines[1].startswith("the closest face it makes:") and "pixel MSE" in lines[1], lines


def test_find_a_face_offers_example_photos_that_ship_with_facegan(stack):
    """Find a face offers examples: photos that ship with facegan (the embedded faces)."""
    from facegan.data.photo import photo_face
    from facegan.gradio_demo.app import EXAMPLE_PHOTOS

    assert len(EXAMPLE_PHOTOS) == 4
    for path in EXAMPLE_PHOTOS:
        assert photo_face(path.read_bytes(), 32).shape == (32, 32, 3)  # each is a photo the demo takes
    config = stack.app.get_config_file()
    (examples,) = [c for c in config["components"] if c.get("type") == "dataset"]
    shown = json.dumps(examples["props"])
    assert all(path.name in shown for path in EXAMPLE_PHOTOS)


def test_share_reaches_gradios_launch_and_the_api_starts_the_demo(stack, monkeypatch):
    """`facegan demo --share` asks Gradio for a share link (not made here: it needs the internet),
    and facegan.demo(address) is the same app from Python."""
    import gradio as gr

    import facegan
    from facegan.cli import main

    asked = {}

    def launch(self, **kwargs):
        asked.update(kwargs)

    monkeypatch.setattr(gr.Blocks, "launch", launch)
    monkeypatch.setattr("facegan.gradio_demo.app.sweep_gradio_cache", lambda: None)
    assert main(["demo", "--server", stack.address, "--share", "--port", "7999"]) == 0
    assert asked["share"] is True and asked["server_port"] == 7999
    monkeypatch.undo()
    with facegan.demo(stack.address) as app:
        from gradio_client import Client

        gallery, _, _ = Client(app.url, verbose=False).predict(3, 2, 1.0, "latest", api_name="/generate")
        assert len(gallery) == 2 and app.share_url is None
    with pytest.raises(facegan.UsageError, match="port must be a whole number"):
        facegan.demo(stack.address, port=70000)
