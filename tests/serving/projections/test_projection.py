"""Find a face: the `project` signatures (quality against random seeds, determinism, the step
bound, no batching queue), `facegan project` against a real server over gRPC and REST and
locally, the demo's Find-a-face tab, and bad photos."""

import io
import json
import struct
import zlib

import grpc
import numpy as np
import pytest
from conftest import free_port, run_cli, start_server
from PIL import Image

from facegan.client import FaceClient
from facegan.client.errors import ServingError
from facegan.client.rest_client import RestClient
from facegan.data.embedded import embedded_faces
from facegan.data.photo import MAX_PIXELS, photo_face
from facegan.errors import DataError
from facegan.serving.batching import BatchingOptions
from facegan.serving.request import ModelRef

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def faces():
    return embedded_faces(32)[0]


@pytest.fixture(scope="module")
def server(model_dir):
    s = start_server(model_dir, rest_port=0, batching=BatchingOptions())
    yield s
    s.stop(1)


def photo_file(tmp_path, face, size=(120, 160), name="photo.jpg"):
    path = tmp_path / name
    Image.fromarray(face).resize(size, Image.Resampling.BICUBIC).save(path)
    return path


def test_projection_beats_the_best_of_64_random_seeds_and_is_deterministic(server, faces):
    with FaceClient(f"127.0.0.1:{server.port}", timeout=60) as c:
        seeded, _ = c.from_seeds(list(range(64)))
        for target in faces[[0, 40, 80]]:
            found = c.project(target)
            error = np.mean((found.image / 255.0 - target / 255.0) ** 2)
            assert abs(error - found.loss) < 2e-3  # the reported loss is the pixel MSE of what came back
            best_random = np.min(np.mean((seeded / 255.0 - target / 255.0) ** 2, axis=(1, 2, 3)))
            assert found.loss < best_random, (found.loss, best_random)
            again = c.project(target)
            np.testing.assert_array_equal(again.z, found.z)
            np.testing.assert_array_equal(again.image, found.image)
            assert c.generate(found.z[None])[0].shape == target.shape  # the z reproduces the face
            np.testing.assert_array_equal(c.generate(found.z[None])[0], found.image)
        fewer = c.project(faces[0], steps=10)
        assert fewer.loss >= c.project(faces[0], steps=300).loss


def test_steps_are_bounded_and_the_image_shape_checked(server, faces):
    with FaceClient(f"127.0.0.1:{server.port}", timeout=60, retries=0) as c:
        for steps in (0, 501, -3):
            with pytest.raises(ServingError) as e:
                c.project(faces[0], steps=steps)
            assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "steps must be 1..500" in e.value.message
        with pytest.raises(ServingError) as e:
            c.project(np.zeros((64, 64, 3), np.uint8))
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT and "image" in e.value.message


def test_projection_never_joins_a_batch_queue(server):
    with server.manager.pin(ModelRef("facegan")) as servable:
        assert {"project", "project_steps"}.isdisjoint(servable.batchable)
        assert {"serving_default", "from_seed", "from_seed_png"} <= servable.batchable
        assert set(servable._batchers) == servable.batchable


def test_rest_gives_the_same_projection(server, faces):
    with FaceClient(f"127.0.0.1:{server.port}", timeout=60) as c:
        by_grpc = c.project(faces[7], steps=30)
    with RestClient(f"http://127.0.0.1:{server.rest_port}", timeout=60) as r:
        by_rest = r.project(faces[7], steps=30)
    np.testing.assert_array_equal(by_rest.z, by_grpc.z)


def test_cli_round_trips(server, trained_run, faces, tmp_path):
    photo = photo_file(tmp_path, faces[12])
    outputs = {}
    for name, where in (
        ("grpc", ["--server", f"127.0.0.1:{server.port}"]),
        ("rest", ["--server", f"http://127.0.0.1:{server.rest_port}"]),
        ("local", ["--run", trained_run]),
    ):
        r = run_cli("project", *where, "--image", photo, "--out", tmp_path / name, "--steps", "40")
        assert r.returncode == 0, r.stderr
        assert "pixel MSE" in r.stdout
        for f in ("target.png", "projected.png", "z.npy", "compare.png"):
            assert (tmp_path / name / f).is_file(), (name, f)
        outputs[name] = np.load(tmp_path / name / "z.npy")
        assert outputs[name].shape == (100,)
    np.testing.assert_array_equal(outputs["grpc"], outputs["rest"])
    np.testing.assert_allclose(outputs["grpc"], outputs["local"], atol=1e-3)  # the served graph = the local one
    target = np.asarray(Image.open(tmp_path / "grpc" / "target.png"))
    np.testing.assert_array_equal(target, photo_face(photo.read_bytes(), 32))  # prepare's pipeline
    compare = np.asarray(Image.open(tmp_path / "grpc" / "compare.png"))
    assert compare.shape[1] > 2 * compare.shape[0] - 40  # two faces side by side


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda p: p.write_bytes(b"this is not an image"), "not an image"),
        (lambda p: Image.new("RGB", (8, 8)).save(p, format="PNG"), "needs at least 16x16"),
        (lambda p: Image.new("L", (9000, 8000)).save(p, format="PNG"), "megapixels"),
        (lambda p: Image.new("L", (5000, 4000)).save(p, format="PNG"), "at most 16 megapixels unless it is a JPEG"),
        (lambda p: p.write_bytes(_png_header(20000, 20000)), "too large"),  # Pillow's decompression-bomb refusal
        (lambda p: p.write_bytes(_truncated_jpeg()), "could not be decoded"),
    ],
)
def test_bad_photos_get_one_line(tmp_path, make, words):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(DataError, match=words):
        photo_face(path.read_bytes(), 32)
    r = run_cli("project", "--server", "127.0.0.1:1", "--image", path, "--out", tmp_path / "out")
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "out").exists()


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height gray pixels and holds none (what a decompression bomb opens with)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _truncated_jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)).save(buffer, format="JPEG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]  # the header intact, half the scan missing


def test_cli_flags_are_checked_first(tmp_path):
    for args, words in (
        (["--image", tmp_path / "missing.jpg", "--out", tmp_path], "does not exist"),
        (["--image", tmp_path, "--out", tmp_path, "--steps", "0"], "steps must be in 1..500"),
    ):
        r = run_cli("project", *args)
        assert r.returncode == 2 and words in r.stderr, r.stderr
    assert MAX_PIXELS == 64 * 2**20


def test_the_api_checks_before_it_asks_or_loads(tmp_path):
    """facegan.project, which the command calls: the steps, the photo and the options are
    checked before any server is asked or TensorFlow loaded (nothing listens on port 1)."""
    import facegan
    from facegan.errors import DataError, UsageError

    photo = tmp_path / "face.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(photo)
    with pytest.raises(UsageError, match="steps must be in 1..500, got 501"):
        facegan.project(photo, server="127.0.0.1:1", steps=501)
    with pytest.raises(UsageError, match="does not exist"):
        facegan.project(tmp_path / "missing.png", server="127.0.0.1:1")
    with pytest.raises(DataError):
        facegan.project(b"not a photo", server="127.0.0.1:1")
    with pytest.raises(UsageError, match="model is a server's option"):
        facegan.project(photo, run=tmp_path, model="facegan")


def test_demo_find_a_face_then_interpolate_from_it(server, faces, tmp_path):
    from gradio_client import Client, handle_file

    from facegan.gradio_demo.app import build_app, launch
    from facegan.gradio_demo.faces import FaceSource

    app = build_app(FaceSource(f"127.0.0.1:{server.port}", timeout=60), out_dir=str(tmp_path / "out"))
    launch(app, "127.0.0.1", free_port(), prevent_thread_lock=True)
    try:
        client = Client(app.local_url, verbose=False)
        photo = photo_file(tmp_path, faces[20])
        target, found, status = client.predict(handle_file(str(photo)), 60, "latest", api_name="/project")
        assert "pixel MSE" in status
        shown = np.asarray(Image.open(found).convert("RGB"))
        assert shown.shape[0] == 256  # enlarged 8x for the page
        from gradio_client.exceptions import AppError

        bad = tmp_path / "bad.jpg"
        bad.write_bytes(b"not a photo")
        with pytest.raises(AppError, match="That photo can't be used"):
            client.predict(handle_file(str(bad)), 60, "latest", api_name="/project")
    finally:
        app.close()


def test_model_card_documents_the_signatures(model_dir):
    card = json.loads((model_dir / "1" / "assets.extra" / "facegan.json").read_text())
    assert card["signatures"]["project"]["inputs"]["image"] == ["uint8", [1, 32, 32, 3]]
    assert card["signatures"]["project_steps"]["inputs"]["steps"] == ["int32", [], "1..500"]
