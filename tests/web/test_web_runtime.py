"""facegan/web/runtime.py: onnxruntime-web vendored only as the lock file pins it (version, SHA-512)."""

import base64
import hashlib
import io
import json
import tarfile

import pytest

from facegan.web import runtime


def tarball(tmp_path, files: dict[str, bytes], name="pkg.tgz"):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path = tmp_path / name
    path.write_bytes(buffer.getvalue())
    return path


def lock_for(tmp_path, data: bytes, version="9.9.9"):
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    lock = tmp_path / "package-lock.json"
    lock.write_text(
        json.dumps({"packages": {"node_modules/onnxruntime-web": {"version": version, "integrity": integrity}}})
    )
    return lock


def package_files(version="9.9.9"):
    files = {f"package/dist/{name}": f"the {name} of {version}".encode() for name in runtime.RUNTIME_FILES}
    files["package/package.json"] = json.dumps({"name": "onnxruntime-web", "version": version}).encode()
    files["package/dist/ort.all.mjs"] = b"not kept"
    return files


def test_vendors_the_kept_files_of_a_tarball_with_the_pinned_sha512(tmp_path):
    path = tarball(tmp_path, package_files())
    lock = lock_for(tmp_path, path.read_bytes())
    out = tmp_path / "ort"
    assert not runtime.is_vendored(out, lock)
    runtime.vendor(out, tarball=path, lock=lock)
    assert sorted(p.name for p in out.iterdir()) == sorted(runtime.KEPT.values())
    assert (out / "ort-wasm-simd-threaded.wasm").read_bytes() == b"the ort-wasm-simd-threaded.wasm of 9.9.9"
    assert runtime.is_vendored(out, lock)
    # a newer pin makes the copy stale
    assert not runtime.is_vendored(out, lock_for(tmp_path, path.read_bytes(), version="10.0.0"))


def test_a_tarball_that_is_not_the_pinned_one_is_refused_and_the_old_copy_stays(tmp_path):
    good = tarball(tmp_path, package_files())
    lock = lock_for(tmp_path, good.read_bytes())
    out = tmp_path / "ort"
    runtime.vendor(out, tarball=good, lock=lock)
    files = package_files()
    files["package/dist/ort-wasm-simd-threaded.wasm"] = b"tampered"
    bad = tarball(tmp_path, files, "bad.tgz")
    with pytest.raises(ValueError, match="SHA-512"):
        runtime.vendor(out, tarball=bad, lock=lock)
    assert (out / "ort-wasm-simd-threaded.wasm").read_bytes() == b"the ort-wasm-simd-threaded.wasm of 9.9.9"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left behind


def test_a_tarball_without_a_runtime_file_writes_nothing(tmp_path):
    files = package_files()
    del files["package/dist/ort.wasm.min.mjs"]
    path = tarball(tmp_path, files)
    with pytest.raises(ValueError, match=r"no ort\.wasm\.min\.mjs"):
        runtime.vendor(tmp_path / "ort", tarball=path, lock=lock_for(tmp_path, path.read_bytes()))
    assert not (tmp_path / "ort").exists()


def test_the_checkout_holds_the_pinned_runtime():
    """scripts/test vendors it before the suite; the wheel and sdist carry it (tests/test_release.py)."""
    assert runtime.is_vendored(), "run: python -m facegan.web.runtime"
    version, _ = runtime.pinned()
    assert json.loads((runtime.VENDORED / "package.json").read_text())["version"] == version
