import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from configs import tiny_config

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Every Python process a test starts prints all its threads' Python stacks if it dies of a fatal
# signal (SIGSEGV, SIGABRT from glibc's "free(): invalid pointer"), as pytest does for itself:
# a rare native crash in a child then says where each thread was.
os.environ.setdefault("PYTHONFAULTHANDLER", "1")

ROOT = Path(__file__).resolve().parents[1]
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
# Orphans of processes the tests start (a shell's background job whose shell ended) are reparented
# to this process rather than to init, so the leak check below still finds them.
ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
# tests/training/jax/ runs only on the JAX backend, in its own interpreter (tests/training/test_jax.py starts it)
collect_ignore = [] if os.environ.get("KERAS_BACKEND") == "jax" else ["training/jax"]


def save_networks(path, generator, discriminator, **arrays) -> None:
    """Both networks' weights (and any arrays: a batch, z) into one .npz that JAX_LOAD_NETWORKS reads."""
    weights = {f"g{i}": w for i, w in enumerate(generator.get_weights())}
    weights.update({f"d{i}": w for i, w in enumerate(discriminator.get_weights())})
    np.savez(path, **arrays, **weights)


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


class Hammer:
    """`call()` from `threads` threads, back to back, while the `with` block runs: what it
    returned goes to `results`, what it raised to `failures` (and the hammering stops)."""

    def __init__(self, call, threads: int = 3):
        self.call = call
        self.results: list = []
        self.failures: list = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self):
        while not self._stop.is_set():
            try:
                self.results.append(self.call())
            except Exception as e:
                self.failures.append(e)
                self._stop.set()

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join()

    def more(self, n: int) -> None:
        """Wait until n more calls have succeeded."""
        count = len(self.results)
        wait_for(lambda: len(self.results) >= count + n or self.failures)


def stop_process(proc: subprocess.Popen, signum: int = signal.SIGTERM, timeout: float = 120) -> tuple[str, str]:
    """Send `signum` and collect the output; a process still running `timeout` s later is killed
    (it never outlives the test) and the test fails, with its output."""
    proc.send_signal(signum)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"still running {timeout} s after {signal.Signals(signum).name}: {err[-2000:]}") from None


def start_serve(*args, env=None) -> tuple[subprocess.Popen, str]:
    """`facegan serve ARGS` in its own interpreter, and the gRPC address its first line names once
    it listens. The caller stops it (stop_process, or kill in a finally)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "facegan.cli", "serve", *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if "listening on 127.0.0.1:" not in line:
        proc.kill()
        raise AssertionError(line or proc.communicate()[1][-3000:])
    return proc, line.split("listening on ")[1].split()[0]


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
    from facegan.exporting.writer import export

    return export(trained_run, tmp_path_factory.mktemp("models"), "facegan").parent


def config_list(base_path, *names) -> str:
    """A model_config_list with one entry per name, every entry on `base_path`."""
    entries = "".join(
        f'  config {{ name: "{name}" base_path: "{base_path}" model_platform: "tensorflow" }}\n' for name in names
    )
    return "model_config_list {\n" + entries + "}\n"


def start_server(base_path, **options):
    """An in-process `facegan serve` on a free localhost port (real gRPC sockets)."""
    from facegan.serving.manager import ModelSource
    from facegan.serving.server import Server, ServerOptions

    sources = options.pop("sources", None) or [ModelSource("facegan", Path(base_path))]
    return Server(sources, ServerOptions(**{"port": 0, **options})).start()


@dataclass(frozen=True)
class Process:
    pid: int
    state: str  # R, S, D, Z (a zombie: ended, not yet reaped), ...
    ppid: int
    pgid: int


def processes() -> dict[int, Process]:
    """Every process on the machine now, from /proc."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue  # ended meanwhile
        state, ppid, pgid = text[text.rindex(")") + 2 :].split()[:3]
        pid = int(stat.parent.name)
        found[pid] = Process(pid, state, int(ppid), int(pgid))
    return found


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "(ended)"


def descendants() -> dict[int, str]:
    """{pid: command line} of every live process below this one (zombies are reaped, not listed)."""
    everything = processes()
    children: dict[int, list[int]] = {}
    for p in everything.values():
        children.setdefault(p.ppid, []).append(p.pid)
    found, todo = {}, list(children.get(os.getpid(), []))
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        if everything[pid].state != "Z":
            found[pid] = command_line(pid)
        elif everything[pid].ppid == os.getpid():
            with contextlib.suppress(ChildProcessError):  # reaped by its owner meanwhile
                os.waitpid(pid, os.WNOHANG)  # an orphan that ended here, or a Popen nobody waited for
    return found


@pytest.fixture(scope="module", autouse=True)
def no_leaked_processes():
    """Every process a test module starts is stopped by the time its fixtures are torn down, even
    when a test failed. What is left is killed here, and the module fails, naming it."""
    before = set(descendants())
    yield
    leaked = {}
    for _ in range(100):  # a process stopped during teardown may take a moment to exit
        leaked = {pid: cmd for pid, cmd in descendants().items() if pid not in before}
        if not leaked:
            return
        time.sleep(0.1)
    for pid in leaked:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in leaked:
        with contextlib.suppress(ChildProcessError):  # a grandchild: its own parent reaps it
            os.waitpid(pid, 0)
    pytest.fail(
        "processes left running by this module (now killed): "
        + "; ".join(f"{pid}: {cmd[:160]}" for pid, cmd in leaked.items())
    )
