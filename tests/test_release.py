"""The release: the sdist and the wheel (`python -m build`: the wheel is built from the sdist),
installed into fresh virtualenvs outside the checkout, as users install them.

- the client alone (`pip install facegan[local]`): no TensorFlow, Keras, JAX or Gradio; its size;
  gRPC and REST calls, `project --server` and LocalFaces against a real `facegan serve`;
- the quick start's install (`facegan[quickstart,portable]`), run from an empty folder: a tiny
  train, export, serve, generate, `facegan web` and the demo answering one request.

pip takes the dependencies from the package registries this project uses (pip's own index
settings); nothing else is downloaded.
"""

import json
import os
import signal
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, free_port, stop_process, wait_for
from PIL import Image

pytestmark = pytest.mark.slow

PACKAGE_DATA = (  # what commands read at run time, besides the code
    "facegan/client/protos.binpb",
    "facegan/web/index.html",
    "facegan/web/app.js",
    "facegan/web/seed_to_z.js",
    "facegan/web/sw.js",
    "facegan/web/package-lock.json",
    "facegan/web/ort/ort-wasm-simd-threaded.wasm",
    "facegan/web/ort/ort-wasm-simd-threaded.mjs",
    "facegan/web/ort/ort.wasm.min.mjs",
    "facegan/web/ort/package.json",
    "facegan/gradio_demo/examples/lfw-00.png",
)
CLIENT_GOAL_MB = 200  # the client alone must stay a small install (docs/install.md)
NOT_IN_THE_CLIENT = ("tensorflow", "tensorflow-cpu", "keras", "jax", "jaxlib", "gradio", "torch", "tf2onnx")
VENV_OWN = ("pip", "setuptools", "_distutils_hack", "pkg_resources", "distutils-precedence.pth")  # python -m venv's


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", out, ROOT], capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    (wheel,) = out.glob("facegan-*.whl")
    (sdist,) = out.glob("facegan-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


class Venv:
    """A fresh virtualenv outside the checkout; its commands run in `cwd` with nothing of the checkout's."""

    def __init__(self, path: Path, requirement: str, cwd: Path):
        self.path = path
        self.cwd = cwd
        subprocess.run([sys.executable, "-m", "venv", path], check=True, timeout=300)
        r = subprocess.run(
            [self.bin("python"), "-m", "pip", "install", "-q", requirement],
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert r.returncode == 0, r.stderr[-3000:]

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name

    @property
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "TF_CPP_MIN_LOG_LEVEL")}
        return {**env, "PATH": f"{self.path / 'bin'}:{env['PATH']}", "PYTHONUNBUFFERED": "1"}

    def run(self, *args, timeout=600) -> subprocess.CompletedProcess:
        command = [str(a) for a in args]
        return subprocess.run(command, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=timeout)

    def ok(self, *args, timeout=600) -> str:
        r = self.run(*args, timeout=timeout)
        assert r.returncode == 0, f"{args}: {r.stderr[-3000:]}"
        return r.stdout

    def start(self, *args) -> subprocess.Popen:
        command = [str(a) for a in args]
        return subprocess.Popen(
            command, cwd=self.cwd, env=self.env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def site_packages(self) -> Path:
        (found,) = (self.path / "lib").glob("python3.*/site-packages")
        return found

    def installed_mb(self) -> float:
        """What pip installed: site-packages without the venv's own pip and setuptools."""
        total = 0
        for path in self.site_packages().iterdir():
            if path.name.split("-")[0] in VENV_OWN or path.name in VENV_OWN:
                continue
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
            total += sum(p.stat().st_size for p in files)
        return total / 1e6

    def distributions(self) -> set[str]:
        listed = json.loads(self.ok(self.bin("python"), "-m", "pip", "list", "--format", "json"))
        return {d["name"].lower().replace("_", "-") for d in listed}


def facegan_home(venv: Venv) -> Path:
    return Path(venv.ok(venv.bin("python"), "-c", "import facegan; print(facegan.__file__)").strip()).parent


def test_the_sdist_and_the_wheel_carry_what_commands_read(dist):
    names = set(zipfile.ZipFile(dist["wheel"]).namelist())
    for name in PACKAGE_DATA:
        assert name in names, name
    assert not any(n.startswith(("tests/", "bench/", "scripts/")) for n in names)
    import tarfile

    with tarfile.open(dist["sdist"]) as tar:
        inside = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for name in (*PACKAGE_DATA, "pyproject.toml", "setup.py", "README.md"):
        assert name in inside, name
    metadata = zipfile.ZipFile(dist["wheel"]).read(f"{dist['wheel'].name.split('-py3')[0]}.dist-info/METADATA").decode()
    base = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert base and not any("tensorflow" in line or "gradio" in line for line in base), base


@pytest.fixture(scope="module")
def served(model_dir, trained_run, tmp_path_factory):
    """A real `facegan serve` (gRPC and REST) from the checkout, and an ONNX export of the same run."""
    onnx = tmp_path_factory.mktemp("onnx") / "export"
    r = subprocess.run(
        [sys.executable, "-m", "facegan.cli", "export", "--run", trained_run, "--format", "onnx", "--out", onnx],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr
    rest = free_port()
    command = ["serve", "--model-base-path", model_dir, "--port", "0", "--rest-api-port", rest]
    proc = subprocess.Popen(
        [sys.executable, "-m", "facegan.cli", *map(str, command)],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        line = proc.stdout.readline()
        assert "listening on" in line, proc.stderr.read()
        yield {"grpc": line.split("listening on ")[1].split()[0], "rest": f"http://127.0.0.1:{rest}", "onnx": onnx}
    finally:
        stop_process(proc)


def test_the_client_alone_has_no_tensorflow_and_calls_a_real_server(dist, served, tmp_path):
    work = tmp_path / "empty"
    work.mkdir()
    client = Venv(tmp_path / "venv", f"{dist['wheel']}[local]", work)
    installed = client.distributions()
    assert not installed & set(NOT_IN_THE_CLIENT), installed & set(NOT_IN_THE_CLIENT)
    assert {"facegan", "numpy", "grpcio", "protobuf", "pillow", "onnxruntime"} <= installed
    r = client.run(client.bin("python"), "-c", "import tensorflow")
    assert r.returncode == 1 and "No module named 'tensorflow'" in r.stderr
    assert facegan_home(client).is_relative_to(client.path)

    # the size of what pip installed; onnxruntime (LocalFaces) on its own line: the rest is the client alone
    onnxruntime_mb = sum(p.stat().st_size for p in (client.site_packages() / "onnxruntime").rglob("*") if p.is_file())
    onnxruntime_mb /= 1e6
    total_mb = client.installed_mb()
    print(f"client install: {total_mb:.0f} MB, {onnxruntime_mb:.0f} MB of it onnxruntime")
    assert total_mb - onnxruntime_mb <= CLIENT_GOAL_MB

    facegan = client.bin("facegan")
    for door, server in (("grpc", served["grpc"]), ("rest", served["rest"])):
        client.ok(facegan, "generate", "--server", server, "--seeds", "0-3", "--out", work / door, "--grid")
        assert sorted(p.name for p in (work / door).glob("seed*.png")) == [f"seed{s:04d}.png" for s in range(4)]
        assert "facegan" in client.ok(facegan, "status", "--server", server)
    from_grpc = np.asarray(Image.open(work / "grpc" / "seed0002.png"))
    from_rest = np.asarray(Image.open(work / "rest" / "seed0002.png"))
    assert np.array_equal(from_grpc, from_rest)  # the same face through both doors

    photo = work / "photo.jpg"
    Image.fromarray(from_rest).resize((96, 96)).save(photo)
    client.ok(facegan, "project", "--image", photo, "--server", served["grpc"], "--steps", "3", "--out", work / "p")
    assert {"target.png", "projected.png", "z.npy"} <= {p.name for p in (work / "p").iterdir()}

    code = "import sys, facegan; faces, z = facegan.LocalFaces(sys.argv[1]).from_seeds([2]); print(faces.shape)"
    shape = client.ok(client.bin("python"), "-c", code, served["onnx"]).strip()
    assert shape == str((1, *from_rest.shape))
    r = client.run(facegan, "train", "--epochs", "1")
    assert r.returncode == 2 and r.stderr.strip().endswith("pip install 'facegan[tf]'"), r.stderr


def test_the_wheel_runs_the_main_job_from_an_empty_folder(dist, tmp_path):
    work = tmp_path / "empty"
    work.mkdir()
    user = Venv(tmp_path / "venv", f"{dist['wheel']}[quickstart,portable]", work)
    assert facegan_home(user).is_relative_to(user.path)
    facegan = user.bin("facegan")
    user.ok(facegan, "train", "--run-dir", "run", "--epochs", 3, "--batch-size", 50, timeout=900)
    user.ok(facegan, "export", "--run", "run", "--base-path", "models")
    user.ok(facegan, "export", "--run", "run", "--format", "onnx", "--out", "onnx")
    user.ok(facegan, "web", "--onnx-dir", "onnx", "--out", "site")
    assert (work / "site" / "ort" / "ort-wasm-simd-threaded.wasm").stat().st_size > 1e6

    server = user.start(facegan, "serve", "--model-base-path", "models/facegan", "--port", 0)
    demo = None
    try:
        line = server.stdout.readline()
        assert "listening on" in line, server.stderr.read()
        address = line.split("listening on ")[1].split()[0]
        user.ok(facegan, "generate", "--server", address, "--seeds", "0-3", "--out", "faces")
        assert len(list((work / "faces").glob("seed*.png"))) == 4

        port = free_port()
        demo = user.start(facegan, "demo", "--server", address, "--port", port)

        def up():
            assert demo.poll() is None, demo.stderr.read()
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).status == 200
            except OSError:
                return False

        wait_for(up, timeout=300)
        code = (
            "import sys; from gradio_client import Client\n"
            "gallery, grid, status = Client(sys.argv[1], verbose=False).predict(7, 2, 1.0, 'latest', api_name='/generate')\n"
            "print(len(gallery), status)"
        )
        answer = user.ok(user.bin("python"), "-c", code, f"http://127.0.0.1:{port}/")
        assert answer.split()[0] == "2", answer
    finally:
        if demo is not None:
            stop_process(demo, signal.SIGINT)
        stop_process(server)
