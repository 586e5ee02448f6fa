import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parents[1]


def tiny_config(epochs: int = 2, **train):
    """lfw32 on the embedded faces, cut down to seconds on a 2-core CPU."""
    from facegan.config import PRESETS

    return PRESETS["lfw32"].override(
        train={"epochs": epochs, "batch_size": 16, **train}, preview={"rows": 2, "cols": 3, "margin": 2}
    )


def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=30):
    """Poll `predicate` every 50 ms until it holds; fail the test after `timeout` seconds."""
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def run_cli(*args, timeout=300, **kwargs):
    """Run `facegan ...` in a fresh interpreter, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "facegan.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=kwargs.pop("cwd", ROOT),
        **kwargs,
    )


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One 2-epoch run on the embedded data, shared by the tests that only read it."""
    from facegan.training.run import train

    return train(tiny_config(2), run_dir=tmp_path_factory.mktemp("runs") / "00000-lfw32", verbose=0)


@pytest.fixture(scope="session")
def model_dir(trained_run, tmp_path_factory):
    """`<base>/facegan` holding version 1, exported from the shared run; tests copy it to change it."""
    from facegan.export.writer import export

    return export(trained_run, tmp_path_factory.mktemp("models"), "facegan").parent


def start_server(base_path, **options):
    """An in-process `facegan serve` on a free localhost port (real gRPC sockets)."""
    from facegan.serving.manager import ModelSource
    from facegan.serving.server import Server, ServerOptions

    sources = options.pop("sources", None) or [ModelSource("facegan", Path(base_path))]
    return Server(sources, ServerOptions(**{"port": 0, **options})).start()
