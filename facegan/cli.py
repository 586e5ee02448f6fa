"""The `facegan` command: parse, validate, dispatch. Heavy imports happen inside each command."""
from __future__ import annotations

import argparse
import os
import sys
import textwrap

from facegan.config import PRESETS, STRATEGIES
from facegan.errors import UsageError

EXIT_USAGE = 2  # bad arguments or data: one line on stderr, no traceback
EXIT_FAILED = 1  # a run that started correctly and then failed (e.g. non-finite loss)


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _examples(text: str) -> dict:
    return {"epilog": "examples:\n" + textwrap.indent(textwrap.dedent(text).strip(), "  "),
            "formatter_class": argparse.RawDescriptionHelpFormatter}


def build_parser() -> argparse.ArgumentParser:
    from facegan import __version__

    p = Parser(prog="facegan", description="Train, export, serve and demo a face-generating GAN.", **_examples("""
        facegan train                      # lfw32: the embedded LFW faces, a few minutes on a CPU
        facegan sample --run runs/00000-lfw32 --seeds 0-15 --out faces --grid
        facegan prepare --src img_align_celeba.zip --res 64 --out data/faces64.npz
        facegan train --preset celeba64 --data data/faces64.npz
    """))
    p.add_argument("--version", action="version", version=f"facegan {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)

    s = sub.add_parser("prepare", help="decode a folder or .zip of images into a training cache", **_examples("""
        facegan prepare --src ~/faces --res 64 --out data/faces64.npz
        facegan prepare --src img_align_celeba.zip --res 64 --out data/celeba64.npz --workers 8
    """))
    s.add_argument("--src", required=True, help="folder (searched recursively) or .zip of JPEG/PNG/WebP files")
    s.add_argument("--res", type=int, default=64, help="output side in pixels (default 64)")
    s.add_argument("--out", required=True, help="the .npz cache to write")
    s.add_argument("--workers", type=int, default=None, help="decoding threads (default: one per core)")

    t = sub.add_parser("train", help="train a GAN run (new or resumed)", **_examples("""
        facegan train
        facegan train --preset lfw32 --epochs 200 --seed 3
        facegan train --preset celeba64 --data data/faces64.npz --batch-size 128 --mixed-precision
        facegan train --resume runs/00003-celeba64
        facegan train --resume runs/00003-celeba64 --epochs 40    # train longer
        facegan train --strategy mirrored --preset celeba64 --data data/faces64.npz
    """))
    t.add_argument("--preset", default="lfw32", choices=sorted(PRESETS), help="starting config (default lfw32)")
    t.add_argument("--data", help="prepared .npz from `facegan prepare` (default: the embedded LFW faces)")
    t.add_argument("--res", type=int, help="resolution, a multiple of 32 in 32..128")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--epochs", type=int)
    t.add_argument("--latent-dim", type=int)
    t.add_argument("--g-lr", type=float, help="generator learning rate")
    t.add_argument("--d-lr", type=float, help="discriminator learning rate")
    t.add_argument("--label-smoothing", type=float, help="one-sided: real labels become 1 - this")
    t.add_argument("--ema-decay", type=float, help="sample and export an EMA of G's weights (0: off)")
    t.add_argument("--augment", help='DiffAugment for D: "translation,cutout", or "none"')
    t.add_argument("--eval-every", type=int, metavar="K", help="SWD every K epochs into metrics.jsonl (0: at the end)")
    t.add_argument("--eval-images", type=int, help="images per side for that SWD")
    t.add_argument("--seed", type=int)
    t.add_argument("--no-flip", action="store_true", help="no random horizontal flips")
    xla = t.add_mutually_exclusive_group()
    xla.add_argument("--xla", action="store_true", help="jit_compile the train step (default: only on GPU)")
    xla.add_argument("--no-xla", action="store_true", help="never jit_compile the train step")
    t.add_argument("--mixed-precision", action="store_true", help="float16 (GPU) / bfloat16 (CPU) compute")
    t.add_argument("--strategy", choices=STRATEGIES, help="tf.distribute strategy (multiworker reads TF_CONFIG)")
    t.add_argument("--runs-root", default="runs", help="where numbered run folders go (default runs/)")
    t.add_argument("--run-dir", help="use this folder instead of the next numbered one")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its last checkpoint")

    m = sub.add_parser("sample", help="write faces for seeds from a run's latest checkpoint", **_examples("""
        facegan sample --run runs/00000-lfw32 --seeds 0-15 --out faces
        facegan sample --run runs/00000-lfw32 --seeds 0,1,4-6 --out faces --grid
    """))
    m.add_argument("--run", required=True, help="run folder")
    m.add_argument("--seeds", required=True, help='seed list, e.g. "0-15" or "0,1,4-6"')
    m.add_argument("--out", required=True, help="output folder for seed0000.png ...")
    m.add_argument("--grid", action="store_true", help="also write grid.png")
    m.add_argument("--checkpoint", help="a specific checkpoint file (default: the latest)")
    e = sub.add_parser("export", help="write a run's generator as a versioned SavedModel", **_examples("""
        facegan export --run runs/00000-lfw32
        facegan export --run runs/00000-lfw32 --base-path models --name facegan --version 7
        facegan export --run runs/00000-lfw32 --checkpoint runs/00000-lfw32/checkpoints/ckpt-0150.npz
        saved_model_cli show --dir models/facegan/1 --all
    """))
    e.add_argument("--run", required=True, help="run folder")
    e.add_argument("--checkpoint", help="a specific checkpoint file (default: the latest)")
    e.add_argument("--base-path", default="models", help="TF Serving's base folder (default models/)")
    e.add_argument("--name", default="facegan", help="model name (default facegan)")
    e.add_argument("--version", help="version number (default: highest existing + 1)")

    ev = sub.add_parser("evaluate", help="SWD, memorization and D accuracy of a run or an export", **_examples("""
        facegan evaluate --run runs/00000-lfw32
        facegan evaluate --model models/facegan/3 --data data/faces64.npz --num-images 8192 --seed 1
        facegan evaluate --run runs/00000-lfw32 --json > report.json
    """))
    which = ev.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", help="run folder (its latest checkpoint; EMA weights when kept)")
    which.add_argument("--model", help="an exported version folder, e.g. models/facegan/3")
    ev.add_argument("--data", help="real images (.npz); default: what the run or model was trained on")
    ev.add_argument("--num-images", type=int, default=8192, help="images per side, capped at the data set's size")
    ev.add_argument("--seed", type=int, default=0, help="fixes the real subset, z, patches and projections")
    ev.add_argument("--out", help="folder for report.json and memorization.png (default <run>/eval or eval/<name>-<version>)")
    ev.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    ev.add_argument("--no-ema", action="store_true", help="a run's raw generator instead of its EMA weights")

    v = sub.add_parser("serve", help="serve exported models over TensorFlow Serving's gRPC API", **_examples("""
        facegan serve --model-base-path models/facegan --model-name facegan --port 8500
        facegan serve --model-config-file models/models.config --host 0.0.0.0
        facegan serve --model-base-path models/facegan --enable-batching --batching-parameters-file deploy/batching_parameters.txt
        facegan serve --model-base-path models/facegan --ssl-cert server.crt --ssl-key server.key --monitoring-port 9100
    """))
    src = v.add_mutually_exclusive_group(required=True)
    src.add_argument("--model-base-path", help="folder of numbered versions, e.g. models/facegan")
    src.add_argument("--model-config-file", help="TF Serving model_config_list text file, e.g. models/models.config")
    v.add_argument("--model-name", default="facegan", help="name clients ask for (with --model-base-path)")
    v.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: all interfaces)")
    v.add_argument("--port", type=int, default=8500, help="gRPC port (default 8500, 0: any free port)")
    v.add_argument("--file-system-poll-wait-seconds", type=float, default=1.0, metavar="S",
                   help="how often to look for new or removed versions (default 1, 0: never)")
    v.add_argument("--max-batch", type=int, default=64, help="largest batch one request may ask for (default 64)")
    v.add_argument("--enable-batching", action="store_true", help="merge concurrent requests into one model call")
    v.add_argument("--batching-parameters-file", help="TF Serving BatchingParameters text file (implies batching)")
    v.add_argument("--typed-fields", action="store_true",
                   help="answer with float_val/int_val fields like TF Serving (default: compact tensor_content)")
    v.add_argument("--ssl-cert", help="PEM certificate chain: serve TLS (with --ssl-key)")
    v.add_argument("--ssl-key", help="PEM private key for --ssl-cert")
    v.add_argument("--monitoring-port", type=int, help="expose Prometheus metrics at :PORT/metrics")

    g = sub.add_parser("generate", help="write faces for seeds, fetched from a gRPC server", **_examples("""
        facegan generate --server localhost:8500 --seeds 0-15 --out faces --grid
        facegan generate --server localhost:8500 --seeds 0,1,4-6 --out faces --truncation 0.7
        facegan generate --server serving.example.com:443 --tls --seeds 7 --out faces --version 3
    """))
    g.add_argument("--server", default="localhost:8500", help="host:port of facegan serve or TF Serving")
    g.add_argument("--model", default="facegan", help="model name (default facegan)")
    g.add_argument("--seeds", required=True, help='seed list, e.g. "0-15" or "0,1,4-6"')
    g.add_argument("--out", required=True, help="output folder for seed0000.png ...")
    g.add_argument("--grid", action="store_true", help="also write grid.png")
    g.add_argument("--truncation", type=float, default=1.0, metavar="PSI",
                   help="scale each z by PSI in [0, 1]: less variety, fewer broken faces (default 1)")
    g.add_argument("--version", type=int, help="pin a model version (default: the server's latest)")
    g.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    g.add_argument("--tls", nargs="?", const=True, metavar="CA_PEM",
                   help="use TLS, trusting the system roots or the given CA certificate")

    d = sub.add_parser("demo", help="the Gradio web app, talking to a gRPC server", **_examples("""
        facegan demo --server localhost:8500
        facegan demo --server localhost:8500 --model facegan --host 0.0.0.0 --port 7860
        facegan demo --server serving.example.com:443 --tls ca.pem
    """))
    d.add_argument("--server", default="localhost:8500", help="host:port of facegan serve or TF Serving")
    d.add_argument("--model", default="facegan", help="model name (default facegan)")
    d.add_argument("--host", default="127.0.0.1", help="address the web app binds (0.0.0.0: all interfaces)")
    d.add_argument("--port", type=int, default=7860, help="web port (default 7860)")
    d.add_argument("--timeout", type=float, default=10.0, help="seconds per gRPC request (default 10)")
    d.add_argument("--tls", nargs="?", const=True, metavar="CA_PEM",
                   help="use TLS, trusting the system roots or the given CA certificate")

    st = sub.add_parser("status", help="the versions a gRPC server holds for a model", **_examples("""
        facegan status --server localhost:8500
        facegan status --server localhost:8500 --wait 60    # until a version is AVAILABLE
    """))
    st.add_argument("--server", default="localhost:8500", help="host:port of facegan serve or TF Serving")
    st.add_argument("--model", default="facegan", help="model name (default facegan)")
    st.add_argument("--wait", type=float, default=0, metavar="S", help="wait up to S seconds for an AVAILABLE version")
    st.add_argument("--tls", nargs="?", const=True, metavar="CA_PEM", help="use TLS")
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    args = build_parser().parse_args(argv)
    from facegan import commands

    try:
        return getattr(commands, args.command)(args) or 0
    except UsageError as e:
        print(f"facegan {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except commands.RUN_ERRORS as e:
        print(f"facegan {args.command}: failed: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"facegan {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
