"""`facegan demo`: the Gradio web app, talking to a server over gRPC or REST."""

from __future__ import annotations

import argparse

from facegan.commands.common import add_server_options, server_options
from facegan.errors import UsageError

HELP = "the Gradio web app, talking to a server (gRPC or REST)"
EXAMPLES = """
    facegan demo --server localhost:8500
    facegan demo --server localhost:8500 --model facegan --host 0.0.0.0 --port 7860
    facegan demo --server serving.example.com:443 --tls ca.pem
    facegan demo --server localhost:8500 --share      # a public gradio.live link (needs the internet)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_server_options(p, timeout=10.0)
    p.add_argument("--host", default="127.0.0.1", help="address the web app binds (0.0.0.0: all interfaces)")
    p.add_argument("--port", type=int, default=7860, help="web port (default 7860)")
    p.add_argument(
        "--share",
        action="store_true",
        help="also a public link through Gradio's share servers (*.gradio.live, 72 hours); needs the internet",
    )


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise UsageError("--port must be in 1..65535")
    options = server_options(args)
    from facegan.gradio_demo.app import build_app, launch, sweep_gradio_cache
    from facegan.gradio_demo.faces import FaceSource

    app = build_app(
        FaceSource(
            args.server,
            options["model"],
            options["timeout"],
            options["tls"],
            options["client_cert"],
            options["label"],
        )
    )
    sweep_gradio_cache()  # for the life of the process, like the app
    where = f"faces from {args.model} at {args.server}"
    print(f"facegan demo: http://{args.host}:{args.port} ({where}; Ctrl-C stops)", flush=True)
    try:
        launch(app, args.host, args.port, share=args.share)
    except OSError as e:
        raise UsageError(f"cannot serve the demo on {args.host}:{args.port}: {e}") from None
    return 0
