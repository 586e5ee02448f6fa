"""`facegan web`: a static site that makes faces in the browser from an ONNX export (facegan/web/)."""

from __future__ import annotations

import argparse

from facegan.commands.common import renamed
from facegan.fileio import check_new_folder

HELP = "build a static web demo (ONNX Runtime Web, no server) from an ONNX export"
EXAMPLES = """
    facegan export --run runs/00000-fast32 --format onnx --out exports/onnx
    facegan web --onnx-dir exports/onnx --out site
    python -m facegan.web.static_server site 8000   # with the headers for WASM threads (docs/web.md)
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--onnx-dir", required=True, metavar="DIR", help="an ONNX export (facegan export --format onnx --out DIR)"
    )
    renamed(p, "--model", "--onnx-dir DIR")
    p.add_argument("--out", required=True, help="a new or empty folder for the site")
    p.add_argument(
        "--runtime", help="onnxruntime-web's dist/ folder (default: the pinned one vendored in facegan/web/ort)"
    )


def run(args: argparse.Namespace) -> int:
    check_new_folder(args.out)
    from facegan.web.site import build_site, site_bytes

    site = build_site(args.onnx_dir, args.out, args.runtime)
    sizes = site_bytes(site)
    parts = ", ".join(f"{name} {size / 1e6:.2f} MB" for name, size in sorted(sizes.items(), key=lambda kv: -kv[1]))
    print(f"built {site}: {sum(sizes.values()) / 1e6:.1f} MB ({parts}); serve the folder with any static file server")
    return 0
