"""`facegan web`: a static site that makes faces in the browser, from an ONNX export.

One page (index.html, app.js), the port of TensorFlow's seed -> z (seed_to_z.js), the model, its
card's public facts (config.json), and onnxruntime-web's WASM build, copied from the package's
vendored copy (facegan/web/ort/: runtime.py, the version and SHA-512 package-lock.json pins) so
the site never loads code from a CDN. A service worker (sw.js) caches every file on
the first visit, so the page works offline afterwards. Any static file server can host the
folder; several WASM threads need the two cross-origin isolation headers (docs/web.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from facegan.client.local import read_onnx_export
from facegan.errors import UsageError
from facegan.fileio import check_new_folder, staged_folder
from facegan.seeds import MAX_SEED
from facegan.web.runtime import RUNTIME_FILES, VENDORED

HERE = Path(__file__).resolve().parent
PAGE_FILES = ("index.html", "app.js", "seed_to_z.js")
CARD_FACTS = ("resolution", "latent_dim", "run", "epochs_trained", "quality", "exported", "seed_to_z")  # shown
DEFAULT_RUNTIME = VENDORED


def runtime_version(runtime: Path) -> str:
    """The version in the vendored folder's package.json, or in the package's (`--runtime` an npm
    install's dist/)."""
    for package in (runtime / "package.json", runtime.parent / "package.json"):
        if package.is_file():
            return json.loads(package.read_text()).get("version", "unknown")
    return "unknown"


def build_site(model: str | os.PathLike, out: str | os.PathLike, runtime: str | os.PathLike | None = None) -> Path:
    """Write the site for the ONNX export folder `model` into the new or empty folder `out`."""
    out = Path(out)
    check_new_folder(out)
    try:
        card, model_name, model_bytes = read_onnx_export(model)
    except ValueError as e:
        raise UsageError(str(e)) from None
    runtime = Path(runtime) if runtime else DEFAULT_RUNTIME
    missing = [name for name in RUNTIME_FILES if not (runtime / name).is_file()]
    if missing:
        raise UsageError(
            f"onnxruntime-web is not in {runtime} ({missing[0]} missing): run `python -m facegan.web.runtime` "
            "(the version and SHA-512 pinned in facegan/web/package-lock.json), or pass --runtime DIR"
        )
    with staged_folder(out, "site") as staging:
        for name in PAGE_FILES:
            shutil.copyfile(HERE / name, staging / name)
        (staging / "ort").mkdir()
        for name in RUNTIME_FILES:
            shutil.copyfile(runtime / name, staging / "ort" / name)
        (staging / "model").mkdir()
        (staging / "model" / "generator.onnx").write_bytes(model_bytes)
        # not the whole card: its config names local paths; config.json carries the facts the page shows
        data = card.get("data") if isinstance(card.get("data"), dict) else {}
        config = {
            "latent_dim": card["latent_dim"],
            "resolution": card["resolution"],
            "max_seed": MAX_SEED,  # the Gradio demo's range (facegan/seeds.py)
            "model_sha256": card["files"][model_name]["sha256"],
            "model_bytes": len(model_bytes),
            "onnxruntime_web": runtime_version(runtime),
            "card": {
                **{key: card.get(key) for key in CARD_FACTS},
                # a data set on disk by its file name only: a public page has no business with local paths
                "data": {**data, "name": Path(str(data.get("name"))).name},
            },
        }
        (staging / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        write_service_worker(staging)
        for path in staging.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
    return out


def write_service_worker(site: Path) -> None:
    """sw.js with the site's file list and a cache version from their checksums."""
    files = sorted(p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + hashlib.sha256((site / name).read_bytes()).digest())
    urls = ["./", *files, "sw.js"]
    text = (HERE / "sw.js").read_text()
    text = text.replace("__VERSION__", "facegan-" + digest.hexdigest()[:16]).replace("__FILES__", json.dumps(urls))
    (site / "sw.js").write_text(text)


def site_bytes(site: Path) -> dict[str, int]:
    """Bytes per top-level part of a built site: the page weight, as the docs report it."""
    sizes: dict[str, int] = {}
    for path in site.rglob("*"):
        if path.is_file():
            part = path.relative_to(site).parts[0]
            sizes[part] = sizes.get(part, 0) + path.stat().st_size
    return sizes
