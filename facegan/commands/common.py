"""What several commands share: seed lists and the options that pick a gRPC server."""

from __future__ import annotations

import argparse
from pathlib import Path

from facegan.client.protocol import DEFAULT_SERVER
from facegan.errors import UsageError
from facegan.versions import DEFAULT_MODEL_NAME


def seeds(text: str) -> list[int]:
    """A seed list like "0,1,4-6", or a UsageError naming what is wrong with it."""
    from facegan.seeds import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as e:
        raise UsageError(str(e)) from None


class _Renamed(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} names a served model in generate, status and demo; here it is {self.metavar}")


def renamed(parser: argparse.ArgumentParser, old: str, new: str) -> None:
    """A hidden flag that says its new name: --model is a model name everywhere, so a folder is spelled
    --version-dir (evaluate) or --onnx-dir (web)."""
    parser.add_argument(old, action=_Renamed, nargs="?", metavar=new, help=argparse.SUPPRESS)


def add_server_options(parser: argparse.ArgumentParser, timeout: float) -> None:
    """--server, --model, --timeout and --tls: how generate, status and demo reach a model."""
    parser.add_argument(
        "--server",
        default=DEFAULT_SERVER,
        help="host:port (gRPC) or http://host:port (REST) of facegan serve or TF Serving",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL_NAME, help=f"model name (default {DEFAULT_MODEL_NAME})")
    parser.add_argument(
        "--label", help="ask for the version under this label of the model config, e.g. stable or canary"
    )
    parser.add_argument("--timeout", type=float, default=timeout, help=f"seconds per request (default {timeout:g})")
    parser.add_argument(
        "--tls",
        nargs="?",
        const=True,
        metavar="CA_PEM",
        help="use TLS, trusting the system roots or this CA certificate",
    )
    parser.add_argument(
        "--tls-client-cert",
        nargs=2,
        metavar=("CERT_PEM", "KEY_PEM"),
        help="present this client certificate and key (servers with mutual TLS: SSLConfig client_verify)",
    )


def server_options(args: argparse.Namespace) -> dict:
    """The FaceClient keyword arguments of add_server_options' flags, validated."""
    if args.timeout <= 0:
        raise UsageError("--timeout must be > 0")
    if isinstance(args.tls, str) and not Path(args.tls).is_file():
        raise UsageError(f"CA certificate {args.tls} does not exist")
    if args.tls_client_cert and not args.tls:
        raise UsageError("--tls-client-cert needs --tls")
    for path in args.tls_client_cert or ():
        if not Path(path).is_file():
            raise UsageError(f"client certificate file {path} does not exist")
    client_cert = tuple(args.tls_client_cert) if args.tls_client_cert else None
    if args.label is not None and not args.label:
        raise UsageError("--label must not be empty")
    if args.label and getattr(args, "version", None) is not None:
        raise UsageError("pin a --version or a --label, not both")
    return {
        "model": args.model,
        "timeout": args.timeout,
        "tls": args.tls,
        "client_cert": client_cert,
        "label": args.label,
    }
