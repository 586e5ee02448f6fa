"""Faces per second, one face per call, on one machine in one run: the static web demo in
Chromium (onnxruntime-web's WASM, 1 thread and all threads), ONNX Runtime in Python
(`LocalFaces`), TensorFlow in-process (the SavedModel's function) and `facegan serve` over gRPC
(`FaceClient.generate`), all from the same run's generator; plus the page's weight and the
browser's memory.

    python bench/web.py --run runs/00000-fast32
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from facegan.client import FaceClient
from facegan.client.local import LocalFaces
from facegan.client.philox import seed_to_z
from facegan.web.site import site_bytes
from facegan.web.static_server import start


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    bf16 = "avx512_bf16" in info or "amx_bf16" in info
    return f"{model}, {os.cpu_count()} cores, {'native' if bf16 else 'no native'} bfloat16"


def per_second(call, count: int) -> float:
    call()  # warm up
    started = time.perf_counter()
    for _ in range(count):
        call()
    return count / (time.perf_counter() - started)


def facegan(*args) -> None:
    res = subprocess.run([sys.executable, "-m", "facegan.cli", *map(str, args)], capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"facegan {args[0]} failed: {res.stderr.strip()[-500:]}")


def renderer_rss_mb() -> float:
    """Resident memory of Chromium's renderer processes (the page: its JS heap and WASM memory)."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdline = status.read_bytes().replace(b"\0", b" ")
            if b"--type=renderer" in cmdline and b"chrom" in cmdline:
                for line in (status.parent / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def browser_rows(site: Path, count: int, threads: list[int]) -> list[tuple[str, float, str]]:
    from playwright.sync_api import sync_playwright

    static = start(site)
    url = f"http://127.0.0.1:{static.server_address[1]}/"
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        for n in threads:
            page = browser.new_page()
            page.goto(f"{url}?threads={n}")
            page.wait_for_selector("body[data-ready=true]", timeout=120_000)
            rate = page.evaluate(f"window.facegan.facesPerSecond({count})")
            heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize / 1048576 : -1")
            memory = f"JS heap {heap:.1f} MB, renderer RSS {renderer_rss_mb():.0f} MB"
            rows.append((f"browser, onnxruntime-web WASM, {n} thread{'s' if n > 1 else ''}", rate, memory))
            page.close()
        browser.close()
    static.shutdown()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a run folder (its newest checkpoint)")
    p.add_argument("--count", type=int, default=300, help="faces per measurement")
    args = p.parse_args()
    print(f"{dt.date.today()}, {platform.platform()}, {cpu()}, Python {platform.python_version()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="facegan-web-bench-"))
    try:
        facegan("export", "--run", args.run, "--format", "onnx", "--out", work / "onnx")
        facegan("export", "--run", args.run, "--base-path", work / "models")
        facegan("web", "--onnx-dir", work / "onnx", "--out", work / "site")
        sizes = site_bytes(work / "site")
        print(
            f"page weight {sum(sizes.values()) / 1e6:.1f} MB: "
            + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes.items())
        )
        z = seed_to_z([0], 100)
        rows = browser_rows(work / "site", args.count, [1, os.cpu_count() or 1])
        with LocalFaces(work / "onnx") as local:
            rows.append(
                (
                    "ONNX Runtime, Python (LocalFaces), all threads",
                    per_second(lambda: local.generate(z), args.count),
                    "",
                )
            )

        import tensorflow as tf

        loaded = tf.saved_model.load(str(work / "models" / "facegan" / "1"))
        serving = loaded.signatures["serving_default"]
        tz = tf.constant(z)
        rows.append(
            (
                "TensorFlow in-process (the SavedModel's serving_default)",
                per_second(lambda: serving(z=tz), args.count),
                "",
            )
        )
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "facegan.cli",
                "serve",
                "--model-base-path",
                str(work / "models" / "facegan"),
                "--port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            line = server.stdout.readline()
            address = line.split("listening on ")[1].split(" ")[0]
            with FaceClient(address) as client:
                rows.append(
                    (
                        "facegan serve, gRPC (FaceClient.generate), same machine",
                        per_second(lambda: client.generate(z), args.count),
                        "",
                    )
                )
        finally:
            server.terminate()
            server.wait(10)
        print("\n| where | faces/s (one face per call) | memory |\n|---|---|---|")
        for name, rate, memory in rows:
            print(f"| {name} | {rate:,.0f} | {memory} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
