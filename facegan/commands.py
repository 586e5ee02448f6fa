"""What each `facegan` subcommand does once its arguments have parsed."""
from __future__ import annotations

import argparse
from pathlib import Path

from facegan.errors import NonFiniteLossError, UsageError
from facegan.serving.status import ServingError

RUN_ERRORS = (NonFiniteLossError, ServingError)


def _seeds(text: str) -> list[int]:
    from facegan.seeds import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as e:
        raise UsageError(str(e)) from None


def prepare(args: argparse.Namespace) -> int:
    from facegan.training.prepare import prepare as run_prepare

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    manifest = run_prepare(args.src, args.res, args.out, workers=args.workers)
    print(f"wrote {args.out}: {manifest['count']} images at {manifest['resolution']}px "
          f"({manifest['skipped']} skipped), sha256 {manifest['sha256'][:12]}")
    return 0


def train_config(args: argparse.Namespace):
    """The preset with the command line's overrides applied (not yet validated)."""
    from facegan.config import preset

    def given(**fields):
        return {k: v for k, v in fields.items() if v is not None}

    cfg = preset(args.preset)
    return cfg.override(
        model=given(resolution=args.res, latent_dim=args.latent_dim),
        data=given(path=args.data, flip=False if args.no_flip else None),
        train=given(batch_size=args.batch_size, epochs=args.epochs, g_lr=args.g_lr, d_lr=args.d_lr,
                    label_smoothing=args.label_smoothing, seed=args.seed, strategy=args.strategy,
                    ema_decay=args.ema_decay, eval_every=args.eval_every, eval_images=args.eval_images,
                    augment=None if args.augment is None else tuple(a for a in args.augment.split(",") if a not in ("", "none")),
                    xla=True if args.xla else False if args.no_xla else None, mixed_precision=True if args.mixed_precision else None),
    )


def train(args: argparse.Namespace) -> int:
    from facegan.training.run import train as run_train

    if args.resume:
        ignored = [f for f in ("preset", "data", "res", "batch_size", "latent_dim", "g_lr", "d_lr",
                               "label_smoothing", "ema_decay", "augment", "eval_every", "eval_images", "seed", "strategy", "run_dir")
                   if getattr(args, f) not in (None, "lfw32")]
        if ignored or args.no_flip or args.xla or args.no_xla or args.mixed_precision:
            raise UsageError("--resume continues with the run's own config; only --epochs may change")
        run_dir = run_train(resume=args.resume, epochs=args.epochs)
    else:
        cfg = train_config(args).validate()
        if args.data and not Path(args.data).is_file():
            raise UsageError(f"data file {args.data} does not exist (create it with `facegan prepare`)")
        run_dir = run_train(cfg, runs_root=args.runs_root, run_dir=args.run_dir)
    print(f"done: {run_dir} (previews/, evolution.gif, checkpoints/)")
    return 0


def export(args: argparse.Namespace) -> int:
    import os

    os.environ["KERAS_BACKEND"] = "tensorflow"  # the SavedModel is always a TensorFlow graph
    version = None
    if args.version is not None:
        if not args.version.isdigit():  # the writer rejects 0
            raise UsageError(f"--version must be a positive integer, got {args.version!r}")
        version = int(args.version)
    if args.checkpoint and not Path(args.checkpoint).is_file():
        raise UsageError(f"checkpoint {args.checkpoint} does not exist")
    from facegan.export.writer import export as run_export

    path = run_export(args.run, args.base_path, args.name, version, args.checkpoint)
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    print(f"exported {path} ({size / 1e6:.1f} MB); TF Serving config: {Path(args.base_path) / 'models.config'}")
    return 0


def sample(args: argparse.Namespace) -> int:
    from facegan import images
    from facegan.sampling import generate, seed_to_z
    from facegan.training.run import restore_run_generator

    seeds = _seeds(args.seeds)
    cfg, generator, ckpt, meta = restore_run_generator(args.run, args.checkpoint)
    faces = generate(generator, seed_to_z(seeds, cfg.model.latent_dim).numpy())
    paths = images.save_batch(args.out, seeds, faces)
    if args.grid:
        images.save_png(Path(args.out) / "grid.png", images.auto_grid(faces))
    print(f"wrote {len(paths)} faces to {args.out} from {ckpt.name} (epoch {meta['epoch']})")
    return 0


def serve(args: argparse.Namespace) -> int:
    import logging

    from facegan.serving.batching import BatchingOptions, parse_batching_parameters
    from facegan.serving.model_config import ModelSource, check_sources, sources_from_config_file

    if not 0 <= args.port <= 65535 or (args.monitoring_port is not None and not 0 <= args.monitoring_port <= 65535):
        raise UsageError("ports must be in 0..65535")
    if args.max_batch < 1 or args.file_system_poll_wait_seconds < 0:
        raise UsageError("--max-batch must be >= 1 and --file-system-poll-wait-seconds >= 0")
    if bool(args.ssl_cert) != bool(args.ssl_key):
        raise UsageError("TLS needs both --ssl-cert and --ssl-key")
    batching = None
    if args.batching_parameters_file:
        try:
            batching = parse_batching_parameters(Path(args.batching_parameters_file).read_text())
        except OSError as e:
            raise UsageError(f"cannot read {args.batching_parameters_file}: {e.strerror}") from None
        except ValueError as e:
            raise UsageError(f"{args.batching_parameters_file}: {e}") from None
    elif args.enable_batching:
        batching = BatchingOptions()
    if args.model_config_file:
        sources = sources_from_config_file(args.model_config_file)
    else:
        sources = [ModelSource(args.model_name, Path(args.model_base_path))]
    check_sources(sources)
    from facegan.serving.server import ServerOptions, serve as run_serve  # loads TensorFlow: after validation

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    options = ServerOptions(host=args.host, port=args.port, poll_wait_s=args.file_system_poll_wait_seconds,
                            max_batch=args.max_batch, batching=batching, typed_fields=args.typed_fields,
                            ssl_cert=args.ssl_cert, ssl_key=args.ssl_key, monitoring_port=args.monitoring_port)
    return run_serve(sources, options)


def generate(args: argparse.Namespace) -> int:
    import numpy as np

    from facegan import images
    from facegan.serving.client import FaceClient

    seeds = _seeds(args.seeds)
    if not 0.0 <= args.truncation <= 1.0:
        raise UsageError(f"--truncation must be in [0, 1], got {args.truncation}")
    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    batch = 64  # facegan serve's default --max-batch; TF Serving accepts it too
    with FaceClient(args.server, args.model, timeout=args.timeout, tls=_tls(args.tls), version=args.version) as client:
        faces = []
        for i in range(0, len(seeds), batch):
            chunk, z = client.from_seeds(seeds[i : i + batch])
            faces.append(chunk if args.truncation == 1.0 else client.generate(args.truncation * z))
    faces = np.concatenate(faces)
    paths = images.save_batch(args.out, seeds, faces)
    if args.grid:
        images.save_png(Path(args.out) / "grid.png", images.auto_grid(faces))
    print(f"wrote {len(paths)} faces ({faces.shape[1]}px) to {args.out} from {args.server}")
    return 0


def _tls(value):
    if isinstance(value, str) and not Path(value).is_file():
        raise UsageError(f"CA certificate {value} does not exist")
    return value


def demo(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535 or args.timeout <= 0:
        raise UsageError("--port must be in 1..65535 and --timeout > 0")
    from facegan.demo.app import build_app, launch
    from facegan.demo.faces import FaceSource

    app = build_app(FaceSource(args.server, args.model, args.timeout, _tls(args.tls)))
    print(f"facegan demo: http://{args.host}:{args.port} (faces from {args.model} at {args.server}; Ctrl-C stops)", flush=True)
    try:
        launch(app, args.host, args.port)
    except OSError as e:
        raise UsageError(f"cannot serve the demo on {args.host}:{args.port}: {e}") from None
    return 0


def status(args: argparse.Namespace) -> int:
    from facegan.serving.client import FaceClient

    if args.wait < 0:
        raise UsageError("--wait must be >= 0")
    with FaceClient(args.server, args.model, tls=_tls(args.tls)) as client:
        versions = client.wait_until_available(args.wait) if args.wait else client.status()
    for v in versions:
        print(f"{args.model} version {v.version}: {v.state}" + (f" ({v.error})" if v.error else ""))
    return 0 if any(v.state == "AVAILABLE" for v in versions) else 1


def evaluate(args: argparse.Namespace) -> int:
    import json
    import os

    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if args.num_images < 1:
        raise UsageError(f"--num-images must be >= 1, got {args.num_images}")
    for path, what in ((args.run, "run folder"), (args.model, "model version folder")):
        if path and not Path(path).is_dir():
            raise UsageError(f"{what} {path} does not exist")
    if args.data and not Path(args.data).is_file():
        raise UsageError(f"data file {args.data} does not exist")
    if args.no_ema and not args.run:
        raise UsageError("--no-ema applies to --run (an export holds one generator)")
    from facegan.evaluation.report import evaluate as run_evaluate, table

    report = run_evaluate(args.run, args.model, args.data, args.num_images, args.seed, args.out, ema=not args.no_ema)
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0
