"""Ctrl-C and SIGTERM stop every long-running command, as a terminal and a supervisor send them:
to a whole process group, to programs started in a script's background (where SIGINT starts
ignored), and while work is in flight. Nothing prints a traceback; nothing outlives its parent."""

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, command_line, free_port, processes

from facegan import stopping
from facegan.client import FaceClient

pytestmark = pytest.mark.slow
READY_S = 300  # how long a program may take to start on a slow, busy machine: a hang bound, not a speed
STOPPED_S = 60  # likewise for stopping: "within a few seconds" on an idle machine


def run_python(code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter, its output captured (the timeout is a hang bound)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_a_stop_signal_while_the_program_exits_ends_it_quietly():
    """After the command is over, a SIGTERM (a script's trap after its Ctrl-C) arrives while Python
    runs atexit hooks: the program ends at once with 143 and no traceback, not with a `Stop` raised
    inside a library's hook. Nothing listens on port 1, so `status` fails first (exit 1)."""
    code = (
        "import atexit, os, signal, sys, time\n"
        "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGTERM), time.sleep(60)))\n"
        "from facegan.cli import entry\n"
        "sys.argv = ['facegan', 'status', '--server', '127.0.0.1:1', '--timeout', '1']\n"
        "sys.exit(entry())\n"
    )
    res = run_python(code)
    assert res.returncode == 128 + signal.SIGTERM, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr and "failed: UNAVAILABLE" in res.stderr, res.stderr[-2000:]


def test_a_second_stop_signal_while_the_program_reports_the_first_ends_it_quietly():
    """Ctrl-C interrupts the command, and while the program prints "interrupted" a SIGTERM arrives
    (the quick start's trap stopping its jobs): the program ends at once with 143, not with a second
    `Stop` raised inside its own report as a traceback. Here the report's first write sends the SIGTERM."""
    code = (
        "import os, signal, sys, time\n"
        "import facegan.commands.status as status\n"
        "status.run = lambda args: (os.kill(os.getpid(), signal.SIGINT), time.sleep(60))\n"
        "class Stderr:\n"
        "    sent = False\n"
        "    def write(self, text):\n"
        "        if not self.sent:\n"
        "            self.sent = True\n"
        "            os.kill(os.getpid(), signal.SIGTERM)\n"
        "        return sys.__stderr__.write(text)\n"
        "    def flush(self):\n"
        "        sys.__stderr__.flush()\n"
        "from facegan.cli import entry\n"
        "sys.argv = ['facegan', 'status', '--server', '127.0.0.1:1']\n"
        "sys.stderr = Stderr()\n"
        "sys.exit(entry())\n"
    )
    res = run_python(code)
    assert res.returncode == 128 + signal.SIGTERM, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr, res.stderr[-2000:]


def test_a_signal_another_thread_received_still_wakes_the_main_thread():
    """A process-directed signal can land on any thread; its Python handler runs only in the main
    thread, so a main thread parked in an untimed wait slept through Ctrl-C (facegan serve kept
    running). Here a helper thread receives the SIGINT itself (pthread_kill)."""
    code = (
        "import signal, threading\n"
        "from facegan.stopping import sleep_until\n"
        "stop = threading.Event()\n"
        "signal.signal(signal.SIGINT, lambda *_: stop.set())\n"
        "threading.Timer(0.2, lambda: signal.pthread_kill(threading.get_ident(), signal.SIGINT)).start()\n"
        "sleep_until(stop)\n"
        "print('stopped')\n"
    )
    res = run_python(code)
    assert res.returncode == 0 and res.stdout.strip() == "stopped", res.stderr[-2000:]


def test_exit_status_is_the_signals_as_a_shell_reports_it():
    assert stopping.exit_status(stopping.Stop(signal.SIGTERM)) == 143
    assert stopping.exit_status(stopping.Stop(signal.SIGINT)) == 130
    assert stopping.exit_status(KeyboardInterrupt()) == 130


def members(pgid: int) -> dict[int, str]:
    """{pid: command} of the live processes in a process group (zombies are not alive)."""
    return {p.pid: command_line(p.pid) for p in processes().values() if p.pgid == pgid and p.state != "Z"}


class Group:
    """A command in a new session (its own process group, as a terminal starts a job), its output
    in files; killed with everything in its group when the test ends, whatever happened."""

    def __init__(self, tmp_path: Path, command: list[str], name: str, cwd: Path = ROOT, env: dict | None = None):
        self.out = tmp_path / f"{name}.out"
        self.err = tmp_path / f"{name}.err"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        with self.out.open("w") as out, self.err.open("w") as err:
            self.proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err, start_new_session=True)
        self.pgid = self.proc.pid

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def wait_for(self, predicate, what: str) -> None:
        end = time.monotonic() + READY_S
        while not predicate():
            assert self.proc.poll() is None or what == "exit", f"ended before {what}: {self.output()[-3000:]}"
            assert time.monotonic() < end, f"no {what} after {READY_S} s: {self.output()[-3000:]}"
            time.sleep(0.2)

    def signal(self, signum: int) -> None:
        os.killpg(self.pgid, signum)  # what a terminal's Ctrl-C does: the whole foreground group

    def wait_stopped(self) -> None:
        """Every process of the group ends (the leader is reaped; orphans go to the test runner)."""
        end = time.monotonic() + STOPPED_S
        while members(self.pgid) or self.proc.poll() is None:
            left = members(self.pgid)
            if time.monotonic() >= end:
                # SIGABRT makes each Python process left print every thread's stack into the output
                # (PYTHONFAULTHANDLER, conftest.py): the failure then says where it was stuck.
                for pid in left:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGABRT)
                time.sleep(2)
                raise AssertionError(f"still running {STOPPED_S} s after the signal: {left}\n{self.output()[-12000:]}")
            time.sleep(0.1)

    def close(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pgid, signal.SIGKILL)
        self.proc.wait()


def answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5).read()
        return True
    except OSError:
        return False


def facegan_args(*args) -> list[str]:
    return [sys.executable, "-m", "facegan.cli", *map(str, args)]


def alive(pid: int) -> bool:
    """Running (not ended, not a zombie waiting to be reaped)."""
    p = processes().get(pid)
    return p is not None and p.state != "Z"


def bytes_read(pid: int) -> int:
    return int(Path(f"/proc/{pid}/io").read_text().split("rchar: ")[1].split()[0])


def test_demo_and_site_server_in_a_scripts_background_stop_on_ctrl_c(tmp_path):
    """A POSIX shell starts background jobs with SIGINT ignored; both still stop on Ctrl-C, and
    the script's `wait` returns."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>faces</p>")
    demo_port, site_port = free_port(), free_port()
    script = (
        f"{shlex.join(facegan_args('demo', '--server', '127.0.0.1:1', '--port', demo_port))} & "
        f"{shlex.join([sys.executable, '-m', 'facegan.web.static_server', str(site), str(site_port)])} & wait"
    )
    job = Group(tmp_path, ["sh", "-c", script], "script")
    try:
        job.wait_for(lambda: answers(f"http://127.0.0.1:{demo_port}/"), "demo page")
        job.wait_for(lambda: answers(f"http://127.0.0.1:{site_port}/"), "site")
        job.signal(signal.SIGINT)
        job.wait_stopped()
    finally:
        job.close()
    assert "Traceback" not in job.output(), job.output()[-3000:]


def test_demo_stops_on_sigterm(tmp_path):
    port = free_port()
    demo = Group(tmp_path, facegan_args("demo", "--server", "127.0.0.1:1", "--port", port), "demo")
    try:
        demo.wait_for(lambda: answers(f"http://127.0.0.1:{port}/"), "demo page")
        os.kill(demo.proc.pid, signal.SIGTERM)  # a supervisor's stop: the process alone
        demo.wait_stopped()
    finally:
        demo.close()
    assert "Traceback" not in demo.output(), demo.output()[-3000:]


def start_serve(tmp_path, model_dir) -> tuple[Group, str]:
    models = tmp_path / "facegan"
    shutil.copytree(model_dir, models)
    command = facegan_args("serve", "--model-base-path", models, "--port", 0, "--rest-api-port", free_port())
    server = Group(tmp_path, command, "serve")
    server.wait_for(lambda: "listening on" in server.out.read_text(), "listening line")
    line = next(li for li in server.out.read_text().splitlines() if "listening on" in li)
    return server, line.split("listening on ")[1].split()[0]


def projection_children(server: Group) -> list[int]:
    """The server's children, whichever of its threads started them."""
    tasks = Path(f"/proc/{server.proc.pid}/task").glob("*/children")
    return [int(pid) for children in tasks for pid in children.read_text().split()]


def test_ctrl_c_to_serve_lets_a_running_projection_finish_and_ends_its_process(tmp_path, model_dir):
    server, address = start_serve(tmp_path, model_dir)
    face = np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)
    try:
        with FaceClient(address, timeout=READY_S) as client:
            client.project(face, steps=5)  # starts the projection process (it loads, then says ready)
            (child,) = projection_children(server)
            before = bytes_read(child)
            result = {}
            call = threading.Thread(target=lambda: result.update(p=client.project(face, steps=50)))
            call.start()
            # in flight once the child has read the call from its pipe (an idle child reads nothing)
            server.wait_for(lambda: bytes_read(child) > before, "the call in the projection process")
            server.signal(signal.SIGINT)  # Ctrl-C at the terminal: the server's whole group
            call.join(READY_S)
        server.wait_stopped()
        assert not alive(child)
    finally:
        server.close()
    assert server.proc.returncode == 0, server.output()[-3000:]
    assert result["p"].image.shape == (32, 32, 3)  # the in-flight projection was answered, not failed
    assert "Traceback" not in server.output() and "KeyboardInterrupt" not in server.output(), server.output()[-3000:]


def test_a_killed_server_takes_its_projection_process_with_it(tmp_path, model_dir):
    server, address = start_serve(tmp_path, model_dir)
    face = np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)
    try:
        with FaceClient(address, timeout=READY_S) as client:
            client.project(face, steps=5)
        (child,) = projection_children(server)
        os.kill(server.proc.pid, signal.SIGKILL)  # no chance to clean up
        server.proc.wait()
        end = time.monotonic() + STOPPED_S
        while alive(child):
            assert time.monotonic() < end, "the projection process outlived its server"
            time.sleep(0.1)
    finally:
        server.close()


def test_sigterm_to_training_saves_a_checkpoint_and_says_so(tmp_path):
    run = tmp_path / "run"
    command = facegan_args("train", "--preset", "lfw32", "--run-dir", run, "--epochs", 500, "--batch-size", 16)
    train = Group(tmp_path, command, "train")
    try:
        train.wait_for(lambda: "epoch 1/500" in train.out.read_text(), "first epoch")
        train.signal(signal.SIGTERM)
        train.wait_stopped()
    finally:
        train.close()
    assert "SIGTERM: stopping after this step and saving a checkpoint" in train.output(), train.output()[-3000:]
    assert "Traceback" not in train.output(), train.output()[-3000:]
    assert list((run / "checkpoints").iterdir())


@pytest.mark.parametrize("background", [False, True], ids=["from-a-terminal", "as-a-background-job"])
def test_ctrl_c_stops_the_quick_start(tmp_path, model_dir, background):
    """scripts/quickstart in a copy of the checkout's scripts, reusing a tiny export; Ctrl-C to its
    group ends the script, the server and the demo. As a background job the script itself starts
    with SIGINT ignored, so its own trap cannot act: the programs must stop by themselves."""
    venv = Path(sys.prefix)
    assert (venv / ".facegan-installed").is_file(), "run the tests through ./scripts/test (it makes .venv)"
    root = tmp_path / "checkout"
    shutil.copytree(ROOT / "scripts", root / "scripts")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(model_dir, root / "models" / "facegan")
    ports = {"FACEGAN_GRPC_PORT": free_port(), "FACEGAN_REST_PORT": free_port(), "FACEGAN_DEMO_PORT": free_port()}
    env = {"FACEGAN_VENV": str(venv), **{k: str(v) for k, v in ports.items()}}
    command = ["sh", "-c", "bash scripts/quickstart & wait"] if background else ["bash", "scripts/quickstart"]
    job = Group(tmp_path, command, "quickstart", cwd=root, env=env)
    try:
        job.wait_for(lambda: answers(f"http://127.0.0.1:{ports['FACEGAN_DEMO_PORT']}/"), "demo page")
        job.signal(signal.SIGINT)
        job.wait_stopped()
    finally:
        job.close()
    assert len(list((root / "faces").glob("*.png"))) >= 16, job.output()[-3000:]
    assert "Traceback" not in job.output(), job.output()[-3000:]
