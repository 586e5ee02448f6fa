"""GPU training throughput of facegan's JAX step vs an idiomatic PyTorch step (issue: GPU
training), plus a short real run.

Needs only JAX, Keras, NumPy and Pillow (no TensorFlow); with PyTorch installed it also times
bench/torch_reference.py (channels_last, bfloat16 autocast, torch.compile) in the same run:

    python bench/gpu_train.py                                             # the full table on a CUDA GPU
    python bench/gpu_train.py --batches 8 --steps 3 --train-steps 5 --no-torch-compile   # a CPU smoke test

For each preset (lecture96, celeba64), batch (32, 128, 512) and precision (float32, bfloat16):
images/s, ms/step, peak device memory (JAX's is the process's peak so far, so it only grows down
the table; PyTorch's is reset per row) and achieved TFLOP/s, on synthetic data. FLOPs are
counted from the layer shapes: 2 x multiply-adds of every Conv2D/UpConv2D/Dense in one forward
pass of G and of D, times 3 for forward + backward, for G once and D twice (real and fake).
The ceiling is a large bfloat16 matrix product on the same device. Then 200 steps on the
embedded faces (or --faces FILE.npy, uint8 NHWC, where scikit-image is missing) check finite
losses and write a preview.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave GPU memory for PyTorch's step
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax
import jax.numpy as jnp
import keras
import numpy as np

from facegan import images
from facegan.config import PRESETS
from facegan.sampling import generate
from facegan.training import jax_step
from facegan.training.gan import FaceGAN
from facegan.training.layers import UpConv2D
from facegan.training.models import build_discriminator, build_generator

try:  # the PyTorch reference is optional: without torch the table has facegan's columns only
    import torch
    from torch_reference import TorchGAN
except ImportError:
    torch = None


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


def time_steps(preset: str, batch: int, mixed: bool, steps: int) -> dict:
    cfg, gan = build(preset, mixed)
    state, step = jax_step.make_step(gan)
    res = cfg.model.resolution
    real = jax.random.uniform(jax.random.key(0), (batch, res, res, 3), minval=-1.0, maxval=1.0)
    for _ in range(2):  # compile and warm up
        state, logs = step(state, real)
    jax.block_until_ready(state)
    start = time.perf_counter()
    for _ in range(steps):
        state, logs = step(state, real)
    jax.block_until_ready((state, logs))
    seconds = (time.perf_counter() - start) / steps
    flops = 3 * (forward_flops(gan.generator) + 2 * forward_flops(gan.discriminator)) * batch
    return {
        "images/s": batch / seconds,
        "ms/step": 1e3 * seconds,
        "flops": flops,
        "TFLOP/s": flops / seconds / 1e12,
        "memory": peak_memory(),
        "finite": bool(np.isfinite(float(logs["g_loss"]))),
    }


def time_torch(preset: str, batch: int, mixed: bool, steps: int, compile: bool, flops: int) -> dict:
    """The same configuration through bench/torch_reference.py (same network, same FLOPs)."""
    cuda = torch.cuda.is_available()
    res = PRESETS[preset].model.resolution
    torch.manual_seed(0)
    gan = TorchGAN(res, device="cuda" if cuda else "cpu", mixed=mixed, compile=compile)
    real = (torch.rand(batch, 3, res, res, device=gan.device) * 2 - 1).contiguous(memory_format=torch.channels_last)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    for _ in range(3):  # compile (a few shapes: autocast, both D calls) and warm up
        gan.step(real)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        g_loss, _ = gan.step(real)
    sync()
    seconds = (time.perf_counter() - start) / steps
    return {
        "images/s": batch / seconds,
        "TFLOP/s": flops / seconds / 1e12,
        "memory": f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if cuda else "n/a",
        "finite": bool(torch.isfinite(g_loss)),
    }


def matmul_ceiling(n: int = 8192, repeats: int = 20) -> float:
    a = jax.random.normal(jax.random.key(1), (n, n), jnp.bfloat16)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    start = time.perf_counter()
    for _ in range(repeats):
        out = f(a)
    out.block_until_ready()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e12


def real_run(train_steps: int, faces_file: str | None, out: Path) -> None:
    if faces_file:
        faces = np.load(faces_file)
    else:
        from facegan.data.embedded import embedded_faces

        faces = embedded_faces(32)[0]
    cfg, gan = build("lfw32", mixed=False)
    from facegan.data.pipeline import numpy_batches

    batches, _ = numpy_batches(faces, 16, 0, True, 0, 10**6)
    state, step = jax_step.make_step(gan)
    losses = []
    for _ in range(train_steps):
        state, logs = step(state, next(batches))
        losses.append((float(logs["g_loss"]), float(logs["d_loss"])))
    jax_step.write_state(gan, state)
    preview = generate(gan.sampler, np.random.default_rng(0).standard_normal((28, cfg.model.latent_dim)))
    images.save_png(out, images.grid(preview, 4, 7, 4))
    ok = np.isfinite(losses).all()
    print(
        f"{train_steps} steps on {len(faces)} real faces: final g_loss {losses[-1][0]:.3f} d_loss {losses[-1][1]:.3f}, "
        f"{'finite' if ok else 'NOT FINITE'}; preview {out}"
    )
    if not ok:
        sys.exit(1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", default="lecture96,celeba64")
    p.add_argument("--batches", default="32,128,512")
    p.add_argument("--steps", type=int, default=50, help="timed steps per configuration")
    p.add_argument("--train-steps", type=int, default=200)
    p.add_argument("--faces", help="uint8 NHWC .npy of real faces (default: the embedded LFW faces)")
    p.add_argument("--out", default="gpu_train_preview.png")
    p.add_argument(
        "--no-torch-compile",
        dest="torch_compile",
        action="store_false",
        help="time the PyTorch step eagerly (torch.compile takes about a minute per shape on a CPU)",
    )
    args = p.parse_args()
    device = jax.devices()[0]
    print(
        f"device: {device.device_kind} ({device.platform}), JAX {jax.__version__}, Keras {keras.__version__}, "
        + (f"PyTorch {torch.__version__}" if torch else "no PyTorch (reference columns left out)")
    )
    head = "| preset | batch | precision | images/s | ms/step | TFLOP/s | peak memory |"
    if torch:
        head += " PyTorch images/s | PyTorch TFLOP/s | PyTorch peak memory | facegan / PyTorch |"
    print(head + "\n" + "|---" * (head.count("|") - 1) + "|")
    results = {}
    for preset in args.presets.split(","):
        for batch in map(int, args.batches.split(",")):
            for mixed in (False, True):
                r = time_steps(preset, batch, mixed, args.steps)
                row = (
                    f"| {preset} | {batch} | {'bfloat16' if mixed else 'float32'} | {r['images/s']:,.0f} | "
                    f"{r['ms/step']:.2f} | {r['TFLOP/s']:.2f} | {r['memory']} |"
                )
                if torch:
                    t = time_torch(preset, batch, mixed, args.steps, args.torch_compile, r["flops"])
                    r["torch"] = t
                    row += (
                        f" {t['images/s']:,.0f} | {t['TFLOP/s']:.2f} | {t['memory']} | "
                        f"{r['images/s'] / t['images/s']:.2f}x |"
                    ) + ("" if t["finite"] else " PyTorch NOT FINITE")
                print(row + ("" if r["finite"] else " NOT FINITE"), flush=True)
                results[preset, batch, mixed] = r
    keras.config.set_dtype_policy("float32")
    ceiling = matmul_ceiling()
    print(f"ceiling: bfloat16 8192x8192 matmul {ceiling:.1f} TFLOP/s")
    largest = max(map(int, args.batches.split(",")))
    for (preset, batch, mixed), r in results.items():
        if mixed and batch == largest:
            line = f"{preset}, batch {batch}, bfloat16: {100 * r['TFLOP/s'] / ceiling:.0f}% of the ceiling"
            if "torch" in r:
                line += f", {r['images/s'] / r['torch']['images/s']:.2f}x the PyTorch step"
            print(line + " (targets: >= 50%, >= 1.5x at 64 px)")
    real_run(args.train_steps, args.faces, Path(args.out))


if __name__ == "__main__":
    main()
