"""A long mixed-traffic run of `facegan serve` with hot swaps: failures, latency per door, memory.

`facegan serve` runs in its own process, serving a copy of --model-dir whose newest version is
replaced every --swap-every seconds (a new version folder appears, the server loads and warms it,
switches, and unloads the old one). Meanwhile --clients threads per door (gRPC and REST) ask for
faces of random seeds, 1 to 8 at a time, and every --project-every seconds one projection
(`project_steps`, 50 steps) goes through alternating doors. Printed at the end:
- requests and failed requests per door, p50 / p99 latency;
- the server's RSS (its own and, separately, its projection process's) at the start, at its
  peak, and the "post-swap low" of every minute: the least RSS between one swap and the next,
  which is what the server keeps once a swap's transient copies are gone. Their trend (a least
  squares slope over the second half, MB per swap) says whether memory keeps growing.

    python bench/soak.py --model-dir models/facegan --minutes 30    # the issue's soak
    python bench/soak.py --model-dir models/facegan --minutes 2 --swap-every 20   # a short look
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facegan.client import FaceClient, RestClient
from facegan.client.errors import ServingError

ROOT = Path(__file__).resolve().parents[1]


def start_server(base_path: Path, flags: list[str] = ()) -> tuple[subprocess.Popen, str, str]:
    command = [sys.executable, "-m", "facegan.cli", "serve", "--model-base-path", str(base_path), "--port", "0", *flags]
    with socket.socket() as s:  # --rest-api-port 0 means "no REST", as in TF Serving: pick a free port
        s.bind(("127.0.0.1", 0))
        rest_port = s.getsockname()[1]
    command += ["--rest-api-port", str(rest_port), "--file-system-poll-wait-seconds", "1"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line or "REST on " not in line:
        proc.kill()
        sys.exit(f"facegan serve did not start: {line!r}")
    grpc_address = line.split("listening on ")[1].split(" ")[0]
    rest_url = "http://" + line.split("REST on ")[1].split(";")[0].strip()
    return proc, grpc_address, rest_url


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children(pid: int) -> list[int]:
    """The process's children, whichever of its threads started them."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


class Traffic:
    """Client threads asking for faces until stopped; latency and failures per door."""

    def __init__(self, grpc_address: str, rest_url: str, clients: int):
        self.grpc_address = grpc_address
        self.rest_url = rest_url
        self.clients = clients
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.seconds = {"gRPC": [], "REST": []}
        self.failures = {"gRPC": [], "REST": []}

    def record(self, door: str, seconds: float | None, error: str | None = None) -> None:
        with self.lock:
            if error is None:
                self.seconds[door].append(seconds)
            else:
                self.failures[door].append(error)

    def generate(self, door: str, seed: int) -> None:
        rng = random.Random(seed)
        make = (lambda: FaceClient(self.grpc_address)) if door == "gRPC" else (lambda: RestClient(self.rest_url))
        with make() as client:
            while not self.stop.is_set():
                seeds = [rng.randrange(2**31) for _ in range(rng.randint(1, 8))]
                started = time.perf_counter()
                try:
                    faces = client.from_seeds(seeds)[0]
                    if faces.shape[0] != len(seeds):
                        raise ValueError(f"{faces.shape[0]} faces for {len(seeds)} seeds")
                    self.record(door, time.perf_counter() - started)
                except (ServingError, ValueError, OSError) as e:
                    self.record(door, None, f"{type(e).__name__}: {e}"[:200])

    def project(self, every: float, resolution: int, rest_timeout_s: float) -> None:
        face = np.random.default_rng(0).integers(0, 255, (resolution, resolution, 3), np.uint8)
        # a projection may first wait for its process to start (~3 s idle, longer under load). A
        # REST client cannot send a deadline: the server's REST timeout decides, so the client
        # waits a little longer than that, and what is measured is the server's answer.
        doors = [
            ("gRPC", FaceClient(self.grpc_address, timeout=60)),
            ("REST", RestClient(self.rest_url, timeout=rest_timeout_s + 10)),
        ]
        turn = 0
        while not self.stop.wait(every):
            door, client = doors[turn % 2]
            turn += 1
            started = time.perf_counter()
            try:
                client.project(face, steps=50)
                self.record(f"{door} projection", time.perf_counter() - started)
            except ServingError as e:
                self.record(f"{door} projection", None, f"{e.code.name}: {e.message}"[:200])
        for _, client in doors:
            client.close()

    def start(self, project_every: float, resolution: int, rest_timeout_s: float) -> list[threading.Thread]:
        self.seconds.update({"gRPC projection": [], "REST projection": []})
        self.failures.update({"gRPC projection": [], "REST projection": []})
        threads = [
            threading.Thread(target=self.generate, args=(door, 1000 * i + j), daemon=True)
            for j, door in enumerate(("gRPC", "REST"))
            for i in range(self.clients)
        ]
        threads.append(
            threading.Thread(target=self.project, args=(project_every, resolution, rest_timeout_s), daemon=True)
        )
        for t in threads:
            t.start()
        return threads


def slope(values: list[float]) -> float:
    """Least-squares MB per swap over the second half of the lows (0 with fewer than 3 points)."""
    half = values[len(values) // 2 :]
    if len(half) < 3:
        return 0.0
    return float(np.polyfit(np.arange(len(half)), half, 1)[0])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True, help="a model's base path (its newest version is served)")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--swap-every", type=float, default=60.0, help="seconds between hot swaps")
    p.add_argument("--project-every", type=float, default=10.0, help="seconds between projections")
    p.add_argument("--clients", type=int, default=2, help="generating client threads per door")
    p.add_argument("--json", help="write every figure here too")
    p.add_argument(
        "--rest-timeout-ms",
        type=int,
        default=30000,
        help="the server's --rest-api-timeout-in-ms: REST's deadline, projections included (TF Serving's 30 s)",
    )
    args = p.parse_args()

    source = max((d for d in Path(args.model_dir).iterdir() if d.name.isdigit()), key=lambda d: int(d.name))
    resolution = int(json.loads((source / "assets.extra" / "facegan.json").read_text())["resolution"])
    work = Path(tempfile.mkdtemp(prefix="facegan-soak-"))
    base = work / "facegan"
    shutil.copytree(source, base / "1")
    proc, grpc_address, rest_url = start_server(base, ["--rest-api-timeout-in-ms", str(args.rest_timeout_ms)])
    print(f"soak: {args.minutes:g} min, a swap every {args.swap_every:g} s, a projection every "
          f"{args.project_every:g} s, {args.clients} clients per door; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; server pid {proc.pid}", flush=True)  # fmt: skip
    traffic = Traffic(grpc_address, rest_url, args.clients)
    samples = []  # (seconds since start, server RSS, projection process RSS, swaps so far)
    start = time.monotonic()
    end = start + 60 * args.minutes
    next_swap = start + args.swap_every
    version = 1
    threads = traffic.start(args.project_every, resolution, args.rest_timeout_ms / 1000)
    try:
        while time.monotonic() < end and proc.poll() is None:
            now = time.monotonic()
            child = sum(rss_mb(c) for c in children(proc.pid))
            samples.append((now - start, rss_mb(proc.pid), child, version - 1))
            if now >= next_swap:
                version += 1
                shutil.copytree(source, base / f".incoming-{version}")
                (base / f".incoming-{version}").rename(base / str(version))  # appears whole
                shutil.rmtree(base / str(version - 2), ignore_errors=True)  # the one before the old one
                next_swap += args.swap_every
            time.sleep(1.0)
    finally:
        traffic.stop.set()
        for t in threads:
            t.join(timeout=60)
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)

    swaps = version - 1
    lows = []
    for k in range(swaps):
        window = [rss for _, rss, _, done in samples if done == k + 1]
        if window:
            lows.append(min(window))
    print("\n| door | requests | failed | p50 (ms) | p99 (ms) |\n|---|---|---|---|---|")
    for door, seconds in traffic.seconds.items():
        failed = len(traffic.failures[door])
        if seconds and "projection" not in door:
            p50, p99 = (1e3 * np.percentile(seconds, q) for q in (50, 99))
            print(f"| {door} | {len(seconds) + failed:,} | {failed} | {p50:.1f} | {p99:.1f} |")
        elif seconds:  # few: the median and the slowest, in seconds
            median = np.median(seconds)
            print(f"| {door} | {len(seconds) + failed:,} | {failed} | {median:.1f} s | max {max(seconds):.1f} s |")
        else:
            print(f"| {door} | {failed:,} | {failed} | | |")
    for door, errors in traffic.failures.items():
        for error in sorted(set(errors))[:5]:
            print(f"  {door} failure: {error}")
    rss = [r for _, r, _, _ in samples]
    child = [c for _, _, c, _ in samples]
    print(f"\nserver RSS: start {rss[0]:.0f} MB, peak {max(rss):.0f} MB, end {rss[-1]:.0f} MB; "
          f"projection process: peak {max(child):.0f} MB")  # fmt: skip
    print(f"post-swap lows ({swaps} swaps), MB: {', '.join(f'{x:.0f}' for x in lows)}")
    print(f"trend over the second half: {slope(lows):+.2f} MB per swap")
    if args.json:
        figures = {
            "minutes": args.minutes,
            "swaps": swaps,
            "seconds": traffic.seconds,
            "failures": traffic.failures,
            "samples": samples,
            "post_swap_lows": lows,
        }
        Path(args.json).write_text(json.dumps(figures))
    if any(traffic.failures.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
