"""facegan/extras.py: each optional part, missing, is one line naming the extra that installs it.

The parts are made missing for real: a fresh interpreter whose import system refuses the modules
(as an install without that extra would). The install without TensorFlow is tests/test_release.py's.
"""

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib

import pytest
from conftest import ROOT

from facegan import extras

WITHOUT = """
import importlib.abc, sys
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Missing())
"""


def run_without(blocked: set[str], code: str, env=None, timeout=300):
    return subprocess.run(
        [sys.executable, "-c", WITHOUT.format(blocked=blocked) + code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def cli_without(blocked: set[str], *args, env=None):
    code = f"from facegan.cli import main\nsys.exit(main({list(map(str, args))!r}, as_program=True))"
    return run_without(blocked, code, env=env)


def assert_one_line(r, extra: str):
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pip install 'facegan[{extra}]'" in lines[0], r.stderr


def requirements(extra: str, table: dict) -> set[str]:
    """The distributions an extra brings, its facegan[...] extras expanded."""
    names = set()
    for requirement in table[extra]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")
        inner = re.search(r"\[(.*)\]", requirement)
        if name == "facegan" and inner:
            for other in inner.group(1).split(","):
                names |= requirements(other.strip(), table)
        else:
            names.add(name)
    return names


def test_the_table_names_the_extras_that_install_each_module():
    """Checked against pyproject.toml and the distributions that provide each module here."""
    table = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    provided_by = importlib.metadata.packages_distributions()
    for module, extra in extras.EXTRA_OF.items():
        assert extra in table, f"{module}: no extra {extra!r} in pyproject.toml"
        distributions = {d.lower().replace("_", "-") for d in provided_by[module]}
        assert distributions & requirements(extra, table), f"{module} ({distributions}) is not in facegan[{extra}]"
    base = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not any(re.match(r"(tensorflow|keras|jax|gradio|torch)\b", r) for r in base), base


def test_demo_without_gradio():
    assert_one_line(cli_without({"gradio"}, "demo", "--server", "127.0.0.1:1"), "demo")


@pytest.mark.slow
def test_jax_backend_without_jax(tmp_path):
    r = cli_without({"jax"}, "train", "--epochs", "1", "--run-dir", tmp_path / "run", env={"KERAS_BACKEND": "jax"})
    assert_one_line(r, "jax")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_onnx_export_without_the_converter(trained_run, tmp_path):
    r = cli_without({"tf2onnx"}, "export", "--run", trained_run, "--format", "onnx", "--out", tmp_path / "onnx")
    assert_one_line(r, "portable")
    assert not (tmp_path / "onnx").exists()


def test_local_faces_without_onnxruntime(tmp_path):
    code = (
        "from facegan.client.local import LocalFaces\n"
        "try:\n    LocalFaces(sys.argv[1])\n"
        "except ModuleNotFoundError as e:\n    print(type(e).__name__, e)\n"
    )
    r = run_without({"onnxruntime"}, code.replace("sys.argv[1]", repr(str(tmp_path))))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (
        "MissingExtra LocalFaces: onnxruntime is not installed (the local extra): pip install 'facegan[local]'"
    )


@pytest.mark.slow
def test_the_python_api_names_the_extra_too():
    code = (
        "import facegan\n"
        "try:\n    facegan.train(epochs=1)\n"
        "except ModuleNotFoundError as e:\n    print(type(e).__name__, e)\n"
    )
    r = run_without({"keras", "tensorflow"}, code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() in (
        f"MissingExtra facegan.train: {module} is not installed (the tf extra): pip install 'facegan[tf]'"
        for module in ("keras", "tensorflow")
    )


@pytest.mark.slow
def test_evaluate_without_opencv_says_which_extra_measures_the_face_rate(trained_run, tmp_path):
    args = ("evaluate", "--run", trained_run, "--num-images", "64", "--out", tmp_path / "ev", "--seed", "2")
    r = cli_without({"cv2"}, *args)
    assert r.returncode == 0, r.stderr
    assert "face rate: not measured (pip install 'facegan[metrics]' adds OpenCV's face detector)" in r.stdout


def test_train_names_the_viewer_or_its_extra(tmp_path):
    code = "from facegan.commands.train import curves_line\nprint(curves_line('runs/00000-x'))"
    r = run_without({"tensorboard"}, code)
    assert r.stdout.strip() == "curves: runs/00000-x/tensorboard/ (the viewer: pip install 'facegan[tensorboard]')"
    r = run_without(set(), code)  # the dev extra installs it
    assert r.stdout.strip() == "curves: tensorboard --logdir runs/00000-x/tensorboard"


def test_a_missing_module_of_no_extra_is_still_a_bug_with_its_traceback():
    code = "from facegan.cli import main\nimport facegan.commands.status as s\n"
    code += "s.run = lambda args: __import__('no_such_module_anywhere')\n"
    code += "sys.exit(main(['status'], as_program=True))"
    r = run_without(set(), code)
    assert r.returncode == 1 and "Traceback" in r.stderr and "no_such_module_anywhere" in r.stderr
