"""Serving latency and throughput: `facegan serve` over gRPC vs calling the SavedModel in-process.

One run, one machine, the same exported version for every figure:
  1. batch 1 and 16, one client, sequential calls: p50/p99 latency and images/s, in-process
     (`tf.saved_model.load(...).signatures["serving_default"]`) and through `facegan serve`;
     server overhead = served p50 / in-process p50 - 1 (target at batch 16: <= 10%);
  2. 32 concurrent clients asking for one face each, with batching (deploy/k8s/config/batching_parameters.txt)
     and without: images/s (target: batching >= 3x);
  3. faces for seeds through each door, calls interleaved: gRPC (`from_seed`), REST JSON (the
     same signature, images as JSON numbers) and REST PNG (`from_seed_png`, base64 PNGs), batch 1
     and 16: p50/p99 and the response size (target: REST PNG for 16 faces within 1.5x gRPC).
The server runs in its own process, as in production.

    python bench/serving.py --model-dir models/facegan      # after scripts/quickstart
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facegan.client import FaceClient

ROOT = Path(__file__).resolve().parents[1]


def timed_pair(a, b, n: int) -> tuple[np.ndarray, np.ndarray]:
    a(), b()  # warm
    times = np.zeros((2, n))
    for i in range(n):
        for j, fn in enumerate((a, b)):
            t = time.perf_counter()
            fn()
            times[j, i] = time.perf_counter() - t
    return times[0], times[1]


def timed_many(fns, n: int) -> list[np.ndarray]:
    """Call each of `fns` n times, interleaved call by call (after one warm-up call each)."""
    for fn in fns:
        fn()
    times = np.zeros((len(fns), n))
    for i in range(n):
        for j, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            times[j, i] = time.perf_counter() - t
    return list(times)


def rest_call(url: str, body: dict) -> int:
    """POST one predict body; returns the response's size in bytes."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return len(response.read())


def doors(model_dir: Path, calls: int) -> None:
    """gRPC vs REST JSON vs REST PNG for the same seeds, on one server."""
    proc, address = start_server(model_dir, "--rest-api-port", str(free_port()))
    rest = proc.rest_url
    print("\n| door | batch | p50 (ms) | p99 (ms) | response bytes |\n|---|---|---|---|---|")
    try:
        with FaceClient(address, timeout=30) as client:
            for batch in (1, 16):
                seeds = list(range(100, 100 + batch))
                url = f"{rest}/v1/models/facegan:predict"
                json_body = {"signature_name": "from_seed", "inputs": seeds}
                png_body = {"signature_name": "from_seed_png", "inputs": seeds}
                sizes = {
                    # the two outputs' tensor_content: about the PredictResponse's size
                    "gRPC from_seed": sum(
                        a.nbytes for a in client.predict("from_seed", {"seed": np.array(seeds)}).values()
                    ),
                    "REST JSON from_seed": rest_call(url, json_body),
                    "REST PNG from_seed_png": rest_call(url, png_body),
                }
                fns = [
                    lambda seeds=seeds: client.from_seeds(seeds),
                    lambda url=url, body=json_body: rest_call(url, body),
                    lambda url=url, body=png_body: rest_call(url, body),
                ]
                p50 = {}
                for name, times in zip(sizes, timed_many(fns, calls)):
                    p50[name] = np.median(times)
                    print(
                        f"| {name} | {batch} | {p50[name] * 1e3:.2f} | {np.percentile(times, 99) * 1e3:.2f} "
                        f"| {sizes[name]:,} |"
                    )
                print(f"REST PNG / gRPC at batch {batch}: {p50['REST PNG from_seed_png'] / p50['gRPC from_seed']:.2f}x")
    finally:
        proc.terminate()
        proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "facegan.cli", "serve", "--model-base-path", str(model_dir), "--port", "0"]
    proc = subprocess.Popen(
        [*command, "--file-system-poll-wait-seconds", "0", *extra],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        sys.exit(f"facegan serve did not start: {line!r}")
    if "REST on " in line:
        proc.rest_url = "http://" + line.split("REST on ")[1].split(";")[0].strip()
    return proc, line.split("listening on ")[1].split()[0]


def concurrent_throughput(address: str, latent_dim: int, clients: int, seconds: float) -> tuple[float, float]:
    """(images/s, p99 latency in ms) of `clients` threads asking for one face each, back to back."""
    counts = [0] * clients
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = threading.Event()
    measuring = threading.Event()

    def run(i):
        with FaceClient(address, timeout=30) as c:
            z = np.random.default_rng(i).standard_normal((1, latent_dim)).astype(np.float32)
            while not stop.is_set():
                start = time.perf_counter()
                c.generate(z)
                counts[i] += 1
                if measuring.is_set():
                    latencies[i].append(time.perf_counter() - start)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # ramp up
    measuring.set()
    start = time.perf_counter()
    before = sum(counts)
    time.sleep(seconds)
    done = sum(counts) - before
    elapsed = time.perf_counter() - start
    stop.set()
    for t in threads:
        t.join()
    return done / elapsed, float(np.percentile([x for times in latencies for x in times], 99) * 1e3)


def row(name, times, batch):
    p50, p99 = np.percentile(times, 50) * 1e3, np.percentile(times, 99) * 1e3
    print(f"| {name:<28} | {batch:>5} | {p50:8.2f} | {p99:8.2f} | {batch / np.median(times):9.1f} |")
    return np.median(times)


def cpu_name() -> str:
    """The CPU model and whether it has native bfloat16 (what the figures depend on)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    bf16 = "avx512_bf16" in info or "amx_bf16" in info
    return f"{model}, {'native' if bf16 else 'no native'} bfloat16"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", default="models/facegan", help="base path with numbered versions")
    p.add_argument("--calls", type=int, default=200, help="sequential calls per latency figure")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--seconds", type=float, default=8.0, help="duration of each throughput run")
    p.add_argument("--batching-parameters-file", default=str(ROOT / "deploy/k8s/config/batching_parameters.txt"))
    p.add_argument("--doors-only", action="store_true", help="only part 3: gRPC vs REST JSON vs REST PNG")
    args = p.parse_args()
    model_dir = Path(args.model_dir)
    versions = sorted(int(v.name) for v in model_dir.glob("[0-9]*"))
    if not versions:
        sys.exit(f"no exported versions in {model_dir}: run scripts/quickstart (or facegan export) first")
    if args.doors_only:
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}; model {model_dir}")
        doors(model_dir, args.calls)
        return
    import tensorflow as tf

    fn = tf.saved_model.load(str(model_dir / str(versions[-1]))).signatures["serving_default"]
    latent_dim = int(fn.structured_input_signature[1]["z"].shape[-1])
    print(
        f"machine: {platform.machine()} ({cpu_name()}), {os.cpu_count()} cores, {platform.python_version()}, "
        f"TF {tf.__version__}; "
        f"model {model_dir}/{versions[-1]}"
    )
    print("| path                         | batch | p50 (ms) | p99 (ms) | images/s |\n|---|---|---|---|---|")
    medians = {}
    proc, address = start_server(model_dir)
    try:
        with FaceClient(address, timeout=30) as client:
            for batch in (1, 16):  # alternate the two paths call by call, so both see the same machine state
                z = np.random.default_rng(batch).standard_normal((batch, latent_dim)).astype(np.float32)
                local, served = timed_pair(
                    lambda z=z: fn(z=tf.constant(z))["images"].numpy(), lambda z=z: client.generate(z), args.calls
                )
                medians["local", batch] = row("in-process SavedModel", local, batch)
                medians["served", batch] = row("facegan serve (gRPC)", served, batch)
        unbatched = concurrent_throughput(address, latent_dim, args.clients, args.seconds)
    finally:
        proc.terminate()
        proc.wait()
    batching = ("--enable-batching", "--batching-parameters-file", args.batching_parameters_file)
    proc, address = start_server(model_dir, *batching)
    try:
        batched = concurrent_throughput(address, latent_dim, args.clients, args.seconds)
    finally:
        proc.terminate()
        proc.wait()
    for batch in (1, 16):
        overhead = medians["served", batch] / medians["local", batch] - 1
        print(f"server overhead at batch {batch}: {overhead:+.1%} of in-process p50")
    print(
        f"{args.clients} concurrent 1-face clients: {unbatched[0]:.1f} images/s unbatched (p99 {unbatched[1]:.1f} ms), "
        f"{batched[0]:.1f} batched (p99 {batched[1]:.1f} ms; {batched[0] / unbatched[0]:.2f}x)"
    )
    doors(model_dir, args.calls)


if __name__ == "__main__":
    main()
