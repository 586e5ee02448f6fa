"""`facegan status`: the versions a server holds for a model; exit 0 once one is AVAILABLE."""

from __future__ import annotations

import argparse

from facegan.commands.common import add_server_options, server_options
from facegan.errors import UsageError

HELP = "the versions a server (gRPC or REST) holds for a model"
EXAMPLES = """
    facegan status --server localhost:8500
    facegan status --server localhost:8500 --wait 60    # until a version is AVAILABLE
    facegan status --server http://localhost:8501       # over REST
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_server_options(p, timeout=10.0)
    p.add_argument("--wait", type=float, default=0, metavar="S", help="wait up to S seconds for an AVAILABLE version")


def run(args: argparse.Namespace) -> int:
    if args.wait < 0:
        raise UsageError("--wait must be >= 0")
    options = server_options(args)
    from facegan.client import connect

    with connect(args.server, **options) as client:
        if args.wait:
            versions = client.wait_until_available(args.wait)
        else:
            versions = client.status()
    for v in versions:
        reason = f" ({v.error})" if v.error else ""
        print(f"{args.model} version {v.version}: {v.state}{reason}")
    return 0 if any(v.state == "AVAILABLE" for v in versions) else 1
