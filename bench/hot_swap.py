"""Hot swaps as fast as a server can take them, under load: does any request fail, does it crash?

A copy of --model-dir's newest version is served as version 1; then, --swaps times, a new version
folder appears, the bench waits until the server answers with it, and removes the version before
it (so each swap is one load, one switch and one unload). Meanwhile --threads client threads ask
for faces over gRPC, back to back. It runs twice, the server:
- in its own process (`facegan serve`), the clients in this one;
- in one process with its clients, as the Python API (`facegan.serve`) runs them in a notebook:
  that process is a child of this one, so a crash is seen as its exit status, not lost with it.

Printed: swaps done, requests answered and failed, and how each ended (a negative exit status
is the signal that killed it: -11 is a segmentation fault). Exit status 1 on any crash or failure.

    python bench/hot_swap.py --model-dir models/facegan                  # 300 swaps each way
    python bench/hot_swap.py --model-dir models/facegan --swaps 20 --where process
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facegan.client import FaceClient
from facegan.client.errors import ServingError

ROOT = Path(__file__).resolve().parents[1]
SWAP_TIMEOUT_S = 120  # one load on a busy 2-core machine takes seconds; this is only "it hangs"


class Load:
    """`threads` gRPC clients asking for 2 faces at a time until stopped."""

    def __init__(self, address: str, threads: int):
        self.client = FaceClient(address, retries=0)  # one channel for all threads: gRPC channels are thread-safe
        self.stop = threading.Event()
        self.answered = 0
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, i: int) -> None:
        seed = 1000 * i
        while not self.stop.is_set():
            seed += 1
            try:
                faces, _ = self.client.from_seeds([seed, seed + 1])
                error = None if faces.shape[0] == 2 else f"{faces.shape[0]} faces for 2 seeds"
            except ServingError as e:
                error = f"{e.code.name}: {e.message}"[:200]
            with self.lock:
                if error is None:
                    self.answered += 1
                else:
                    self.failures.append(error)

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=60)
        self.client.close()


def swap(base: Path, source: Path, address: str, swaps: int, alive, done=lambda n: None) -> int:
    """Add version v+1, wait until the server answers with it, remove version v-1; `swaps` times,
    calling done(swaps so far) after each. Returns the swaps done (fewer when `alive()` turns
    false: the server died)."""
    with FaceClient(address, retries=0) as status:
        for version in range(2, swaps + 2):
            incoming = base / f".incoming-{version}"
            shutil.copytree(source, incoming)
            incoming.rename(base / str(version))  # appears whole
            end = time.monotonic() + SWAP_TIMEOUT_S
            while True:
                if not alive():
                    return version - 2
                try:
                    if status.metadata()["version"] == version:
                        break
                except ServingError:
                    pass  # an answer from a server that is about to be checked by alive()
                if time.monotonic() > end:
                    raise SystemExit(f"version {version} was not served within {SWAP_TIMEOUT_S} s")
                time.sleep(0.05)
            shutil.rmtree(base / str(version - 1))  # the old one: unloaded at the next poll
            done(version - 1)
    return swaps


def copy_first(model_dir: Path, work: Path) -> tuple[Path, Path]:
    source = max((d for d in model_dir.iterdir() if d.name.isdigit()), key=lambda d: int(d.name))
    base = work / "facegan"
    shutil.copytree(source, base / "1")
    return source, base


def in_own_process(model_dir: Path, swaps: int, threads: int) -> dict:
    """`facegan serve` as a child process; the clients and the swaps here."""
    with tempfile.TemporaryDirectory(prefix="facegan-hot-swap-") as work:
        source, base = copy_first(model_dir, Path(work))
        command = [sys.executable, "-m", "facegan.cli", "serve", "--model-base-path", str(base), "--port", "0",
                   "--rest-api-port", "0", "--file-system-poll-wait-seconds", "0.2"]  # fmt: skip
        proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            if "listening on" not in line:
                raise SystemExit(f"facegan serve did not start: {line!r} {proc.stderr.read()[-2000:]}")
            address = line.split("listening on ")[1].split(" ")[0]
            with Load(address, threads) as load:
                done = swap(base, source, address, swaps, lambda: proc.poll() is None)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        stderr = proc.stderr.read()
        return {"swaps": done, "answered": load.answered, "failures": load.failures, "exit": proc.returncode,
                "stderr_tail": stderr[-3000:] if proc.returncode else ""}  # fmt: skip


def in_one_process(model_dir: Path, swaps: int, threads: int) -> dict:
    """The server, its clients and the swaps in one child interpreter (`--inner`)."""
    command = [sys.executable, __file__, "--inner", "--model-dir", str(model_dir), "--swaps", str(swaps),
               "--threads", str(threads)]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    figures = {"swaps": 0, "answered": 0, "failures": []}
    for line in out.splitlines():
        if line.startswith("{"):
            figures = json.loads(line)
    figures["exit"] = proc.returncode
    figures["stderr_tail"] = err[-3000:] if proc.returncode else ""
    return figures


def inner(model_dir: Path, swaps: int, threads: int) -> None:
    import faulthandler

    import facegan

    faulthandler.enable()
    with tempfile.TemporaryDirectory(prefix="facegan-hot-swap-") as work:
        source, base = copy_first(model_dir, Path(work))
        with facegan.serve(base, rest_port=None, poll_wait_s=0.2) as server, Load(server.grpc_address, threads) as load:

            def report(n: int) -> None:  # after every swap: a crash still leaves the count so far
                print(json.dumps({"swaps": n, "answered": load.answered, "failures": load.failures}), flush=True)

            report(swap(base, source, server.grpc_address, swaps, lambda: True, report))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True, type=Path, help="a model's base path (its newest version is used)")
    p.add_argument("--swaps", type=int, default=300)
    p.add_argument("--threads", type=int, default=8, help="client threads asking for faces")
    p.add_argument("--where", choices=("process", "one-process", "both"), default="both")
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        return inner(args.model_dir, args.swaps, args.threads)
    print(f"hot swap: {args.swaps} swaps under {args.threads} client threads; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs", flush=True)  # fmt: skip
    runs = {"process": in_own_process, "one-process": in_one_process}
    bad = False
    for where in runs if args.where == "both" else [args.where]:
        started = time.monotonic()
        figures = runs[where](args.model_dir, args.swaps, args.threads)
        seconds = time.monotonic() - started
        ended = "clean" if figures["exit"] == 0 else f"exit status {figures['exit']}"
        print(f"{where:12s} swaps {figures['swaps']:4d}/{args.swaps}  answered {figures['answered']:6d}  "
              f"failed {len(figures['failures'])}  server {ended}  ({seconds:.0f} s)", flush=True)  # fmt: skip
        for failure in sorted(set(figures["failures"]))[:5]:
            print(f"  failure: {failure}")
        if figures["stderr_tail"]:
            print("  its last lines:\n    " + "\n    ".join(figures["stderr_tail"].splitlines()[-25:]))
        bad |= figures["exit"] != 0 or bool(figures["failures"]) or figures["swaps"] < args.swaps
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
