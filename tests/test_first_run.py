"""A new user's first run, as a program: facegan prints facegan's own lines, one per epoch when
not on a terminal, and none of TensorFlow's native (absl) log lines or CUDA notices."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import ROOT, run_cli, stop_process

from facegan import native_logs
from facegan.cli import main

NOISE = re.compile(r"cuda|absl|onednn|cpu_feature_guard|^[IWEF]\d{4} ", re.IGNORECASE | re.MULTILINE)


def assert_quiet(*outputs: str) -> None:
    for text in outputs:
        assert not NOISE.search(text), text[-3000:]


def facegan(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as on a fresh machine: nothing set
    return subprocess.Popen(
        [sys.executable, "-m", "facegan.cli", *map(str, args)],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out, err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_filter_drops_native_lines_only():
    assert native_logs.is_native_noise(
        b"E0000 00:00:1795815503.647350    3186 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error"
    )
    assert native_logs.is_native_noise(b"WARNING: All log messages before absl::InitializeLog() is called are written")
    assert not native_logs.is_native_noise(b"facegan train: error: resolution must be a multiple of 32")
    assert not native_logs.is_native_noise(b"F0000 00:00:1.5 12 check.cc:3] Check failed: fatal lines stay")
    code = (
        "import os, sys\nfrom facegan import native_logs\nnative_logs.hide()\n"
        "os.write(2, b'I0000 00:00:1.25    7 port.cc:153] oneDNN custom operations are on.\\nkept native line\\n')\n"
        "print('python line', file=sys.stderr)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0
    assert sorted(res.stderr.splitlines()) == ["kept native line", "python line"]


def test_resume_refuses_every_config_flag(capsys, tmp_path):
    for flags in (["--preset", "lfw32"], ["--preset", "lecture"], ["--no-flip"], ["--xla"], ["--seed", "0"]):
        with pytest.raises(SystemExit) as e:
            raise SystemExit(main(["train", "--resume", str(tmp_path), *flags]))
        assert e.value.code == 2, flags
        assert "only epochs may change" in capsys.readouterr().err


@pytest.mark.slow
def test_train_export_serve_generate_demo_print_only_facegan_lines(tmp_path):
    run = tmp_path / "run"
    out, err = finish(facegan("train", "--run-dir", run, "--epochs", 3, "--batch-size", 50))
    assert_quiet(out, err)
    assert "\r" not in out + err  # not a terminal: no progress bar
    assert [line.split()[1] for line in out.splitlines() if line.startswith("epoch ")] == ["1/3", "2/3", "3/3"]

    out, err = finish(facegan("export", "--run", run, "--base-path", tmp_path / "models"))
    assert_quiet(out, err)

    server = facegan("serve", "--model-base-path", tmp_path / "models" / "facegan", "--port", 0)
    try:
        line = server.stdout.readline()
        assert "listening on" in line, server.stderr.read()
        address = line.split("listening on ")[1].split()[0]
        for args in (["generate", "--seeds", "0-3", "--out", tmp_path / "faces"], ["status"]):
            res = run_cli(*args, "--server", address, env={k: v for k, v in os.environ.items() if "TF_CPP" not in k})
            assert res.returncode == 0, res.stderr
            assert_quiet(res.stdout, res.stderr)

        port = free_port()
        demo = facegan("demo", "--server", address, "--port", port)
        try:
            deadline = time.time() + 120
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                    break
                except OSError:
                    assert demo.poll() is None and time.time() < deadline, demo.stderr.read()
                    time.sleep(0.5)
        finally:
            out, err = stop_process(demo, signal.SIGINT)
        assert_quiet(out, err)
    finally:
        out, err = stop_process(server, signal.SIGTERM)
    assert server.returncode == 0, err
    assert_quiet(out, err)
