"""What several commands share: seed lists and the options that pick a gRPC server."""

from __future__ import annotations

import argparse
from pathlib import Path

from facegan.client.protocol import DEFAULT_SERVER
from facegan.errors import UsageError


def seeds(text: str) -> list[int]:
    """A seed list like "0,1,4-6", or a UsageError naming what is wrong with it."""
    from facegan.seeds import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as e:
        raise UsageError(str(e)) from None


def add_server_options(parser: argparse.ArgumentParser, timeout: float) -> None:
    """--server, --model, --timeout and --tls: how generate, status and demo reach a model."""
    parser.add_argument(
        "--server",
        default=DEFAULT_SERVER,
        help="host:port (gRPC) or http://host:port (REST) of facegan serve or TF Serving",
    )
    parser.add_argument("--model", default="facegan", help="model name (default facegan)")
    parser.add_argument("--timeout", type=float, default=timeout, help=f"seconds per request (default {timeout:g})")
    parser.add_argument(
        "--tls",
        nargs="?",
        const=True,
        metavar="CA_PEM",
        help="use TLS, trusting the system roots or this CA certificate",
    )


def server_options(args: argparse.Namespace) -> dict:
    """The FaceClient keyword arguments of add_server_options' flags, validated."""
    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    if isinstance(args.tls, str) and not Path(args.tls).is_file():
        raise UsageError(f"CA certificate {args.tls} does not exist")
    return {"model": args.model, "timeout": args.timeout, "tls": args.tls}
