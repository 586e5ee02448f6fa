"""onnxruntime-web's WASM build, vendored into the package: facegan/web/ort/.

The version and its SHA-512 are the ones facegan/web/package-lock.json pins. `vendor()` takes the
package's tarball from npm's registry (or a tarball already on disk), refuses it unless its SHA-512
is the lock file's `integrity`, and writes the few files a site needs (RUNTIME_FILES and the
package's package.json) into ort/, whole or not at all. The wheel and
the sdist carry ort/ (setup.py runs this before it builds them), so a user of the wheel needs
neither Node nor npm; in a checkout `scripts/test` runs it (`python -m facegan.web.runtime`).

Standard library only, and no facegan import: setup.py loads this file by path, before facegan's
dependencies exist.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCK = HERE / "package-lock.json"
VENDORED = HERE / "ort"  # what build_site copies from by default
PACKAGE = "onnxruntime-web"
RUNTIME_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
# and the package's package.json: its version goes into each site's config.json, its "license" is MIT
# (1.30.0's tarball has no LICENSE file)
KEPT = {f"package/dist/{name}": name for name in RUNTIME_FILES} | {"package/package.json": "package.json"}
REGISTRY = "https://registry.npmjs.org"
MAX_TARBALL_BYTES = 200 * 2**20  # 1.30.0's is 33 MB; a registry answering more is refused, not read into memory


def pinned(lock: Path = LOCK) -> tuple[str, str]:
    """The lock file's version and `integrity` (sha512-<base64>) for onnxruntime-web."""
    entry = json.loads(lock.read_text())["packages"][f"node_modules/{PACKAGE}"]
    return entry["version"], entry["integrity"]


def is_vendored(folder: Path = VENDORED, lock: Path = LOCK) -> bool:
    """True when `folder` holds every kept file at the pinned version."""
    try:
        version = json.loads((folder / "package.json").read_text())["version"]
    except (OSError, ValueError, KeyError):
        return False
    return version == pinned(lock)[0] and all((folder / name).is_file() for name in KEPT.values())


def tarball_url(version: str) -> str:
    return f"{REGISTRY}/{PACKAGE}/-/{PACKAGE}-{version}.tgz"


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as answer:
        data = answer.read(MAX_TARBALL_BYTES + 1)
    if len(data) > MAX_TARBALL_BYTES:
        raise ValueError(f"{url} is larger than {MAX_TARBALL_BYTES >> 20} MiB")
    return data


def check_integrity(data: bytes, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise ValueError(f"the lock file's integrity is {algorithm}, not sha512")
    got = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if got != expected:
        raise ValueError(f"{PACKAGE}'s tarball has SHA-512 {got[:16]}..., the lock file pins {expected[:16]}...")


def vendor(folder: Path = VENDORED, tarball: Path | None = None, lock: Path = LOCK) -> Path:
    """Write the kept files of the pinned, checked tarball into `folder` (replaced whole)."""
    version, integrity = pinned(lock)
    data = tarball.read_bytes() if tarball else download(tarball_url(version))
    check_integrity(data, integrity)
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                name = KEPT.get(member.name)
                if name and member.isfile():
                    (staging / name).write_bytes(tar.extractfile(member).read())
                    (staging / name).chmod(0o644)
        missing = [name for name in KEPT.values() if not (staging / name).is_file()]
        if missing:
            raise ValueError(f"{PACKAGE} {version}'s tarball has no {missing[0]}")
        staging.chmod(0o755)
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            folder.rename(old)
        staging.rename(folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def main(argv: list[str]) -> int:
    """`python -m facegan.web.runtime [TARBALL]`: vendor unless already there (a tarball: use it)."""
    tarball = Path(argv[0]) if argv else None
    if tarball is None and is_vendored():
        print(f"{PACKAGE} {pinned()[0]} is already in {VENDORED}")
        return 0
    try:
        vendor(tarball=tarball)
    except (OSError, ValueError) as e:
        print(f"cannot vendor {PACKAGE}: {e}", file=sys.stderr)
        return 1
    print(f"{PACKAGE} {pinned()[0]} (SHA-512 as pinned) is in {VENDORED}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
