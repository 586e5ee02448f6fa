"""Generation's latency beside projections, in one run: `from_seed` p99 on both doors of one
`facegan serve` process, alone and while 8 gRPC and 8 REST clients (another process) loop
`project_steps(100)` and back off 0.2 s when refused; plus how many projections finished, how
many were refused and how fast a refusal came. (The test suite asserts the order of events:
generation answered while a projection runs, excess refused at once; the figures live here.)

    python bench/beside_projections.py --model-dir models/facegan
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from soak import start_server

from facegan.client import FaceClient, RestClient

PROJECTORS = """
import json, sys, threading, time
import numpy as np
from facegan.client import FaceClient, RestClient
from facegan.client.errors import ServingError

grpc_address, rest_address, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
face = np.random.default_rng(0).integers(0, 255, (32, 32, 3), np.uint8)
outcomes = []
end = time.monotonic() + seconds

def project_forever(door):
    client = FaceClient(grpc_address, retries=0) if door == "grpc" else RestClient(rest_address, retries=0)
    with client:
        while time.monotonic() < end:
            started = time.perf_counter()
            try:
                client.project(face, steps=100)
                outcomes.append((door, "ok", time.perf_counter() - started))
            except ServingError as e:
                outcomes.append((door, e.code.name, time.perf_counter() - started))
                time.sleep(0.2)  # a refused client backs off a little, then tries again

threads = [threading.Thread(target=project_forever, args=(door,)) for door in ("grpc", "rest") * 8]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(outcomes))
"""


def latencies(grpc_client, rest_client, n: int) -> dict[str, list[float]]:
    seconds = {"gRPC": [], "REST": []}
    for i in range(n):
        for door, client in (("gRPC", grpc_client), ("REST", rest_client)):
            started = time.perf_counter()
            client.from_seeds([i % 50])
            seconds[door].append(time.perf_counter() - started)
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True, help="a model's base path (its newest version is served)")
    p.add_argument("--requests", type=int, default=200, help="from_seed calls per door, alone and beside")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="facegan-beside-"))
    shutil.copytree(args.model_dir, work / "model")
    server, grpc_address, rest_url = start_server(work / "model")
    try:
        with FaceClient(grpc_address) as g, RestClient(rest_url) as r:
            latencies(g, r, 20)  # warm up both doors
            alone = latencies(g, r, args.requests)
            seconds = 8 + args.requests * 0.06
            projectors = subprocess.Popen(
                [sys.executable, "-c", PROJECTORS, grpc_address, rest_url, str(seconds)],
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(6)  # the clients start and the projection process loads
            beside = latencies(g, r, args.requests)
        outcomes = json.loads(projectors.communicate(timeout=seconds + 120)[0])
    finally:
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    print("| door | from_seed p99 alone | beside 8 + 8 projecting clients | ratio |\n|---|---|---|---|")
    for door in ("gRPC", "REST"):
        before, during = np.percentile(alone[door], 99), np.percentile(beside[door], 99)
        print(f"| {door} | {1e3 * before:.1f} ms | {1e3 * during:.1f} ms | {during / before:.2f}x |")
    refused = [s for _, code, s in outcomes if code == "UNAVAILABLE"]
    done = [s for _, code, s in outcomes if code == "ok"]
    other = sorted({code for _, code, _ in outcomes} - {"ok", "UNAVAILABLE"})
    print(
        f"projections: {len(done)} finished, {len(refused)} refused in {1e3 * np.median(refused):.0f} ms "
        f"(95th percentile {1e3 * np.percentile(refused, 95):.0f} ms), other outcomes: {other or 'none'}"
    )


if __name__ == "__main__":
    main()
