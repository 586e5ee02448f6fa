"""GPU training throughput of facegan's JAX step vs an idiomatic PyTorch step, plus a
real run on the embedded faces.

Needs only JAX, Keras, NumPy and Pillow (no TensorFlow); with PyTorch installed it also times
bench/torch_reference.py (channels_last, bfloat16 autocast, torch.compile) in the same run:

    python bench/gpu_train.py                                             # the full table on a CUDA GPU
    python bench/gpu_train.py --batches 8 --steps 3 --train-steps 5 --no-torch-compile   # a CPU smoke test

For each preset (lecture96, celeba64), batch (32, 128, 512) and precision (float32, bfloat16):
images/s, ms/step (the median of --repeats timings of --steps steps each), peak device memory
(JAX's is the process's peak so far, so it only grows down the table; PyTorch's is reset per
row) and TFLOP/s, on synthetic data. "TFLOP/s" counts the lecture's network from the layer
shapes: 2 x multiply-adds of every Conv2D/UpConv2D (at its 3x3 upsample+conv cost)/Dense in one
forward pass of G and of D, times 3 for forward + backward, for G once and D twice (real and
fake) -- the same count for facegan and PyTorch, whichever form UpConv2D computes (XLA's own
cost analysis is no help here: on a GPU it leaves out cuDNN's convolutions). The ceiling is a
large bfloat16 matrix product on the same device. "form" is how UpConv2D computed: facegan's
choice (layers.plain_pair_is_faster), or with --forms the other form too, at the largest batch.

The plan runs in order of importance, so a run cut short by --deadline still answers the
main question: the ceiling; the headline row (first preset, largest batch, first precision) and its
other form; the real run (--train-steps steps of --real-preset on the embedded faces resized
to its resolution, or --faces FILE.npy, uint8 NHWC: finite losses and a preview grid); a
profiler trace of the headline row (--trace); then the other rows, largest batch first, while
time is left. The table is printed sorted at the end and every result goes to --json.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave GPU memory for PyTorch's step
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # torch_reference

import jax
import jax.numpy as jnp
import keras
import numpy as np

from facegan import images
from facegan.config import PRESETS
from facegan.sampling import generate
from facegan.training import jax_step, layers
from facegan.training.gan import FaceGAN
from facegan.training.layers import UpConv2D
from facegan.training.models import build_discriminator, build_generator

try:  # the PyTorch reference is optional: without torch the table has facegan's columns only
    import torch
    from torch_reference import TorchGAN
except ImportError:
    torch = None

STARTED = time.perf_counter()


def elapsed() -> float:
    return time.perf_counter() - STARTED


def forward_flops(model: keras.Model) -> int:
    """2 x multiply-adds per image of the model's convolutions and dense layers (UpConv2D at its 3x3 cost)."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, (keras.layers.Conv2D, UpConv2D)):
            kh, kw, cin, cout = layer.kernel.shape
            h, w = layer.output.shape[1:3]
            total += 2 * kh * kw * cin * cout * h * w
        elif isinstance(layer, keras.layers.Dense):
            total += 2 * int(np.prod(layer.kernel.shape))
    return total


def facegan_form(mixed: bool) -> str:
    """The form UpConv2D computes by itself here, in this precision."""
    platform = "gpu" if jax.default_backend() == "gpu" else "cpu"
    plain = layers.plain_pair_is_faster("jax", platform, "bfloat16" if mixed else "float32")
    return "upsample+conv" if plain else "transposed"


@contextlib.contextmanager
def upconv_form(form: str):
    """UpConv2D computes `form` while the step is traced, whatever facegan would choose."""
    chosen = layers.plain_pair_is_faster
    layers.plain_pair_is_faster = lambda *args: form == "upsample+conv"
    try:
        yield
    finally:
        layers.plain_pair_is_faster = chosen


@contextlib.contextmanager
def image_padding(channels: int | None):
    """ImageConv2D pads to `channels` (0: not at all) while the step is traced, whatever facegan
    would choose (None: facegan's choice, layers.padded_channels)."""
    chosen = layers.padded_channels
    if channels is not None:
        layers.padded_channels = lambda *args: channels
    try:
        yield
    finally:
        layers.padded_channels = chosen


def split_form(form: str) -> tuple[str, int | None]:
    """("transposed", 8) from "transposed, image convs padded to 8"; ("transposed", None) from "transposed"."""
    if ", image convs padded to " in form:
        upconv, channels = form.split(", image convs padded to ")
        return upconv, int(channels)
    return form, None


def build(preset: str, mixed: bool, seed: int = 0):
    keras.config.set_dtype_policy("mixed_bfloat16" if mixed else "float32")
    cfg = PRESETS[preset]
    keras.utils.set_random_seed(seed)
    g, d = build_generator(cfg.model), build_discriminator(cfg.model)
    gan = FaceGAN(g, d, seed=seed)
    gan.compile(
        keras.optimizers.Adam(cfg.train.g_lr, cfg.train.beta_1), keras.optimizers.Adam(cfg.train.d_lr, cfg.train.beta_1)
    )
    gan.build_optimizers()
    return cfg, gan


def peak_memory() -> str:
    stats = jax.devices()[0].memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return f"{peak / 2**30:.2f} GiB" if peak else "n/a"


def median_seconds(run_steps, steps: int, repeats: int) -> float:
    """Median over `repeats` of the mean seconds per step of `steps` steps (run_steps syncs at its end)."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        run_steps(steps)
        timings.append((time.perf_counter() - start) / steps)
    return statistics.median(timings)


def time_steps(preset: str, batch: int, mixed: bool, steps: int, repeats: int, form: str) -> dict:
    t0 = time.perf_counter()
    upconv, padding = split_form(form)
    cfg, gan = build(preset, mixed)
    state, step = jax_step.make_step(gan)
    res = cfg.model.resolution
    real = jax.random.uniform(jax.random.key(0), (batch, res, res, 3), minval=-1.0, maxval=1.0)
    # UpConv2D and ImageConv2D pick their form when the step is traced, here
    with upconv_form(upconv), image_padding(padding):
        compiled = step.lower(state, real).compile()
    compile_s = time.perf_counter() - t0
    box = {"state": state}

    def run_steps(n: int) -> None:
        s = box["state"]
        for _ in range(n):
            s, logs = compiled(s, real)
        jax.block_until_ready((s, logs))
        box["state"] = s
        box["logs"] = logs

    run_steps(2)  # warm up
    seconds = median_seconds(run_steps, steps, repeats)
    flops = 3 * (forward_flops(gan.generator) + 2 * forward_flops(gan.discriminator)) * batch
    return {
        "images/s": batch / seconds,
        "ms/step": 1e3 * seconds,
        "flops": flops,
        "TFLOP/s": flops / seconds / 1e12,
        "memory": peak_memory(),
        "finite": bool(np.isfinite(float(box["logs"]["g_loss"]))),
        "compile_s": compile_s,
        "_run": run_steps,  # the compiled step, kept for --trace (not written to --json)
    }


def time_torch(preset: str, batch: int, mixed: bool, steps: int, repeats: int, compile: bool, flops: int) -> dict:
    """The same configuration through bench/torch_reference.py (same network, same FLOPs)."""
    t0 = time.perf_counter()
    # Each row builds new modules: without a reset, Dynamo's per-function recompile limit (8) would
    # silently leave the later rows' networks running eagerly.
    torch._dynamo.reset()
    cuda = torch.cuda.is_available()
    res = PRESETS[preset].model.resolution
    torch.manual_seed(0)
    gan = TorchGAN(res, device="cuda" if cuda else "cpu", mixed=mixed, compile=compile)
    real = (torch.rand(batch, 3, res, res, device=gan.device) * 2 - 1).contiguous(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    box = {}

    def run_steps(n: int) -> None:
        for _ in range(n):
            g_loss, _ = gan.step(real)
        sync()
        box["g_loss"] = g_loss

    run_steps(3)  # compile (a few shapes: autocast, both D calls) and warm up
    compile_s = time.perf_counter() - t0
    seconds = median_seconds(run_steps, steps, repeats)
    return {
        "images/s": batch / seconds,
        "ms/step": 1e3 * seconds,
        "TFLOP/s": flops / seconds / 1e12,
        "memory": f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else "n/a",
        "finite": bool(torch.isfinite(box["g_loss"])),
        "compile_s": compile_s,
    }


def matmul_ceiling(n: int = 8192, repeats: int = 20) -> float:
    """bfloat16 n x n x n products on random data: the median of `repeats` timings, in TFLOP/s."""
    a = jax.random.normal(jax.random.key(1), (n, n), jnp.bfloat16)
    b = jax.random.normal(jax.random.key(2), (n, n), jnp.bfloat16)
    f = jax.jit(lambda x, y: x @ y)
    f(a, b).block_until_ready()

    def run_steps(k: int) -> None:
        for _ in range(k):
            out = f(a, b)
        out.block_until_ready()

    return 2 * n**3 / median_seconds(run_steps, 5, repeats) / 1e12


def real_run(preset: str, train_steps: int, batch: int, faces_file: str | None, out: Path) -> dict:
    """`train_steps` steps of `preset` (float32, as the preset trains) on real faces, batches from
    NumPy through the host as `facegan train --backend jax` feeds them; a 4x7 preview grid."""
    cfg, gan = build(preset, mixed=False)
    res = cfg.model.resolution
    if faces_file:
        faces = np.load(faces_file)
    else:
        from facegan.data.embedded import embedded_faces

        faces = embedded_faces(res)[0]
    from facegan.data.pipeline import numpy_batches

    batches, _ = numpy_batches(faces, batch, 0, True, 0, 10**6)
    state, step = jax_step.make_step(gan)
    losses = []
    start = time.perf_counter()
    for i in range(train_steps):
        state, logs = step(state, next(batches))
        if i % 100 == 0 or i == train_steps - 1:
            losses.append((i, float(logs["g_loss"]), float(logs["d_loss"])))
    jax.block_until_ready(state)
    seconds = time.perf_counter() - start
    jax_step.write_state(gan, state)
    preview = generate(gan.sampler, np.random.default_rng(0).standard_normal((28, cfg.model.latent_dim)))
    images.save_png(out, images.grid(preview, cfg.preview.rows, cfg.preview.cols, cfg.preview.margin))
    every_step = [(g, d) for _, g, d in losses]
    return {
        "preset": preset,
        "steps": train_steps,
        "batch": batch,
        "faces": len(faces),
        "resolution": res,
        "seconds": seconds,
        "images/s": train_steps * batch / seconds,
        "losses": losses,
        "finite": bool(np.isfinite(every_step).all()),
        "preview": str(out),
    }


def write_trace(run_steps, steps: int, out: Path, label: str) -> None:
    """A Perfetto trace (JSON, gzipped) of `steps` more steps of a timed row: kernel names and durations."""
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder, create_perfetto_trace=True):
            run_steps(steps)
        found = sorted(Path(folder).rglob("perfetto_trace.json.gz"))
        if not found:
            print(f"no perfetto trace under {folder}: {[str(p) for p in Path(folder).rglob('*')]}")
            return
        shutil.copyfile(found[0], out)
    print(f"trace: {steps} steps of {label} -> {out}")
    summarize_trace(out, steps)


def summarize_trace(path: Path, steps: int, top: int = 25) -> None:
    """The device's busiest kernels in a Perfetto trace: total ms per step and share of the busy time."""
    with gzip.open(path, "rt") as f:
        events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    names = {e["pid"]: e["args"]["name"] for e in events if e.get("ph") == "M" and e.get("name") == "process_name"}
    device = [pid for pid, name in names.items() if "GPU" in name or "TPU" in name] or list(names)
    threads = {
        (e["pid"], e["tid"]): e["args"]["name"]
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name" and e.get("pid") in device
    }
    # Kernels sit on the stream threads; "XLA Ops"/"XLA Modules" lines span the same time again.
    streams = {key for key, name in threads.items() if "Stream" in name} or set(threads)
    busy = {}
    for e in events:
        if e.get("ph") == "X" and (e.get("pid"), e.get("tid")) in streams and "dur" in e:
            busy[e["name"]] = busy.get(e["name"], 0.0) + e["dur"]
    total = sum(busy.values())
    print(f"device threads: {sorted(set(threads.values()))[:12]}")
    lines = sorted(threads[k] for k in streams)[:6]
    print(f"kernel time on {lines}: {total / 1e3 / steps:.2f} ms/step, {len(busy)} kernels")
    for name, us in sorted(busy.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {us / 1e3 / steps:8.3f} ms/step {100 * us / total:5.1f}%  {name[:110]}")


def row_text(key: tuple, r: dict) -> str:
    preset, batch, mixed, form = key
    mark = "" if form == facegan_form(mixed) else " (not facegan's choice)"
    text = (
        f"| {preset} | {batch} | {'bfloat16' if mixed else 'float32'} | {form}{mark} | {r['images/s']:,.0f} | "
        f"{r['ms/step']:.2f} | {r['TFLOP/s']:.1f} | {r['memory']} |"
    )
    t = r.get("torch")
    if t:
        text += f" {t['images/s']:,.0f} | {t['TFLOP/s']:.1f} | {t['memory']} | {r['images/s'] / t['images/s']:.2f}x |"
        text += "" if t["finite"] else " PyTorch NOT FINITE"
    elif torch:
        text += " | | | |"
    return text + ("" if r["finite"] else " NOT FINITE")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default="celeba64,lecture96")
    p.add_argument("--batches", default="512,128,32")
    p.add_argument("--precisions", default="bfloat16,float32")
    p.add_argument("--steps", type=int, default=20, help="steps per timing")
    p.add_argument("--repeats", type=int, default=5, help="timings per configuration (the median is reported)")
    p.add_argument("--forms", action="store_true", help="also time the plain upsample+conv form at the largest batch")
    p.add_argument(
        "--pad-rgb",
        default="",
        help="also time the headline row with its image convolutions (3 channels) padded to these channel "
        "counts instead of facegan's choice (0: unpadded; e.g. 0,8,32)",
    )
    p.add_argument("--train-steps", type=int, default=2000, help="steps of the real run (0: none)")
    p.add_argument("--real-preset", default="celeba64")
    p.add_argument("--real-batch", type=int, help="the real run's batch (default: the preset's)")
    p.add_argument("--faces", help="uint8 NHWC .npy of real faces (default: the embedded LFW faces)")
    p.add_argument("--out", default="gpu_train_preview.png")
    p.add_argument("--trace", help="write a Perfetto trace (.json.gz) of 10 steps of the first row here")
    p.add_argument("--json", help="write every result here")
    p.add_argument("--deadline", type=float, default=0, help="seconds after which no further row starts (0: none)")
    p.add_argument("--no-torch", dest="torch", action="store_false", help="facegan's columns only")
    p.add_argument(
        "--no-torch-compile",
        dest="torch_compile",
        action="store_false",
        help="time the PyTorch step eagerly (torch.compile takes about a minute per shape on a CPU)",
    )
    args = p.parse_args()
    use_torch = torch is not None and args.torch
    device = jax.devices()[0]
    print(
        f"device: {device.device_kind} ({device.platform}), JAX {jax.__version__}, Keras {keras.__version__}, "
        + (f"PyTorch {torch.__version__}" if use_torch else "no PyTorch (reference columns left out)"),
        flush=True,
    )
    presets = args.presets.split(",")
    batches = [int(b) for b in args.batches.split(",")]
    precisions = [{"bfloat16": True, "float32": False}[name] for name in args.precisions.split(",")]
    largest = max(batches)
    keras.config.set_dtype_policy("float32")
    side = 8192 if device.platform == "gpu" else 1024  # a CPU smoke test need not spend minutes here
    ceiling = matmul_ceiling(side)
    print(f"[{elapsed():.0f} s] ceiling: bfloat16 {side}x{side} matmul {ceiling:.1f} TFLOP/s", flush=True)

    results = {}
    skipped = []

    def run_row(key: tuple, with_torch: bool) -> None:
        preset, batch, mixed, form = key
        if args.deadline and elapsed() > args.deadline:
            skipped.append(key)
            return
        try:
            r = time_steps(preset, batch, mixed, args.steps, args.repeats, form)
        except Exception as e:  # one broken configuration must not cost the rest of a lease
            print(f"[{elapsed():.0f} s] {key}: facegan step failed: {type(e).__name__}: {str(e)[:300]}", flush=True)
            return
        if with_torch:
            try:
                r["torch"] = time_torch(preset, batch, mixed, args.steps, args.repeats, args.torch_compile, r["flops"])
            except Exception as e:
                print(f"[{elapsed():.0f} s] {key}: PyTorch step failed: {type(e).__name__}: {str(e)[:300]}", flush=True)
        results[key] = r
        compiles = f"compile {r['compile_s']:.0f} s"
        if "torch" in r:
            compiles += f", torch {r['torch']['compile_s']:.0f} s"
        print(f"[{elapsed():.0f} s] {row_text(key, r)}  ({compiles})", flush=True)

    # In order of importance: the headline row and its plain-form twin, the real run, the trace of
    # the headline row, the other rows at the largest batch, then the smaller batches.
    def other(form: str) -> str:
        return "transposed" if form == "upsample+conv" else "upsample+conv"

    headline = (presets[0], largest, precisions[0], facegan_form(precisions[0]))
    run_row(headline, use_torch)
    if args.forms:
        run_row((*headline[:3], other(headline[3])), False)
    for channels in [int(c) for c in args.pad_rgb.split(",") if c]:
        run_row((*headline[:3], f"{headline[3]}, image convs padded to {channels}"), False)
    real = None
    if args.train_steps:
        batch = args.real_batch or PRESETS[args.real_preset].train.batch_size
        try:
            real = real_run(args.real_preset, args.train_steps, batch, args.faces, Path(args.out))
            print(
                f"[{elapsed():.0f} s] real run: {real['steps']} steps of {real['preset']} (batch {batch}) on "
                f"{real['faces']} real faces at {real['resolution']} px in {real['seconds']:.1f} s "
                f"({real['images/s']:,.0f} images/s): final g_loss {real['losses'][-1][1]:.3f} "
                f"d_loss {real['losses'][-1][2]:.3f}, {'finite' if real['finite'] else 'NOT FINITE'}; "
                f"preview {real['preview']}",
                flush=True,
            )
        except Exception as e:
            print(f"[{elapsed():.0f} s] real run failed: {type(e).__name__}: {str(e)[:300]}", flush=True)
    if args.trace and headline in results:
        try:
            write_trace(results[headline]["_run"], 10, Path(args.trace), row_text(headline, results[headline])[:40])
        except Exception as e:
            print(f"[{elapsed():.0f} s] trace failed: {type(e).__name__}: {str(e)[:300]}", flush=True)
    for batch in sorted(batches, reverse=True):
        for preset in presets:
            for mixed in precisions:
                key = (preset, batch, mixed, facegan_form(mixed))
                if key != headline:
                    run_row(key, use_torch)
                    if args.forms and batch == largest and preset == presets[0]:
                        run_row((preset, batch, mixed, other(key[3])), False)

    head = "| preset | batch | precision | UpConv2D form | images/s | ms/step | TFLOP/s | peak memory |"
    if use_torch:
        head += " PyTorch images/s | PyTorch TFLOP/s | PyTorch peak memory | facegan / PyTorch |"
    print("\n" + head + "\n" + "|---" * (head.count("|") - 1) + "|")
    order = {name: i for i, name in enumerate(presets)}
    for key in sorted(results, key=lambda k: (order[k[0]], k[1], k[2], k[3] != facegan_form(k[2]))):
        print(row_text(key, results[key]))
    print(f"ceiling: bfloat16 {side}x{side} matmul {ceiling:.1f} TFLOP/s (median of 20)")
    for key, r in results.items():
        preset, batch, mixed, form = key
        if mixed and batch == largest and form == facegan_form(mixed):
            line = f"{preset}, batch {batch}, bfloat16: {100 * r['TFLOP/s'] / ceiling:.0f}% of the ceiling"
            if "torch" in r:
                line += f", {r['images/s'] / r['torch']['images/s']:.2f}x the PyTorch step"
            print(line + " (targets: >= 50%, >= 1.5x at 64 px)")
    for key in skipped:
        print(f"not run (deadline): {key}")
    if args.json:
        fields = ("preset", "batch", "bfloat16", "upconv_form")
        rows = [dict(zip(fields, key), **{k: v for k, v in r.items() if k != "_run"}) for key, r in results.items()]
        summary = {"device": device.device_kind, "jax": jax.__version__, "keras": keras.__version__}
        summary["torch"] = torch.__version__ if use_torch else None
        summary.update(ceiling=ceiling, rows=rows, real_run=real)
        Path(args.json).write_text(json.dumps(summary, indent=1))
    if real and not real["finite"]:
        sys.exit(1)
    if any(not r["finite"] for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
