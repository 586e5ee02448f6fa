"""setuptools' hook (the metadata is pyproject.toml's): before the sdist or a wheel is built,
vendor onnxruntime-web's WASM build into facegan/web/ort/ as facegan/web/package-lock.json pins
it (facegan/web/runtime.py), so both carry it and `facegan web` needs no Node where they are
installed. A wheel built from the sdist finds it there already; an editable install skips it
(scripts/test vendors the checkout)."""

import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

RUNTIME_PY = Path(__file__).resolve().parent / "facegan" / "web" / "runtime.py"


def vendor_web_runtime() -> None:
    spec = importlib.util.spec_from_file_location("facegan_web_runtime", RUNTIME_PY)
    runtime = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runtime)  # standard library only: facegan's dependencies need not be here
    if not runtime.is_vendored():
        runtime.vendor()


class BuildPy(build_py):
    def run(self):
        if not self.editable_mode:
            vendor_web_runtime()
        super().run()


class SDist(sdist):
    def run(self):
        vendor_web_runtime()
        super().run()


setup(cmdclass={"build_py": BuildPy, "sdist": SDist})
