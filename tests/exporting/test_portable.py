"""`facegan export --format onnx|litert`: ONNX Runtime's and LiteRT's faces are the SavedModel's
(every pixel within 1/255, 64 seeds), from z computed without TensorFlow; the card records the
file's checksum; bad input exits 2 with one line and writes nothing."""

import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_cli

from facegan.client import philox
from facegan.exporting.portable import sha256

pytestmark = pytest.mark.slow
SEEDS = np.arange(64) * 7919 - 200  # 64 seeds, negative ones too


@pytest.fixture(scope="module")
def saved_model(model_dir):
    return tf.saved_model.load(str(model_dir / "1"))


@pytest.fixture(scope="module")
def exports(trained_run, tmp_path_factory):
    base = tmp_path_factory.mktemp("portable")
    for model_format in ("onnx", "litert"):
        res = run_cli("export", "--run", trained_run, "--format", model_format, "--out", base / model_format)
        assert res.returncode == 0, res.stderr[-2000:]
        assert f"exported {base / model_format} ({model_format}," in res.stdout
    return base


def server_faces(saved_model, seeds) -> tuple[np.ndarray, np.ndarray]:
    """(images, z) of the SavedModel's own seed signature: TF Serving's answer for these seeds."""
    out = saved_model.signatures["from_seed"](seed=tf.constant(seeds, tf.int64))
    return out["images"].numpy(), out["z"].numpy()


def assert_same_faces(mine: np.ndarray, reference: np.ndarray) -> None:
    assert mine.dtype == np.uint8 and mine.shape == reference.shape
    difference = np.abs(mine.astype(int) - reference.astype(int))
    print(f"max difference {difference.max()}/255 on {np.count_nonzero(difference)} of {difference.size} values")
    assert difference.max() <= 1


def test_onnx_runtime_makes_the_saved_models_faces(exports, saved_model):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(exports / "onnx/generator.onnx"), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("z", ["batch", 100])]
    assert [(o.name, o.shape, o.type) for o in session.get_outputs()] == [
        ("images", ["batch", 32, 32, 3], "tensor(uint8)")
    ]
    images, z = server_faces(saved_model, SEEDS)
    # the same z: the conversion alone
    assert_same_faces(session.run(None, {"z": z})[0], images)
    # z from the NumPy port: seed 42 without TensorFlow anywhere
    assert_same_faces(session.run(None, {"z": philox.seed_to_z(SEEDS, 100)})[0], images)


def test_litert_makes_the_saved_models_faces(exports, saved_model):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(exports / "litert/generator.tflite"))
    assert interpreter.get_signature_list() == {"serving_default": {"inputs": ["z"], "outputs": ["images"]}}
    run = interpreter.get_signature_runner("serving_default")
    images, z = server_faces(saved_model, SEEDS)
    assert_same_faces(run(z=z)["images"], images)
    assert_same_faces(run(z=philox.seed_to_z(SEEDS, 100))["images"], images)


def test_local_faces_are_the_servers_without_a_server(exports, saved_model):
    """The TF-free client's LocalFaces: from_seeds with no server and no TensorFlow in its path."""
    from facegan.client.local import LocalFaces

    images, z = server_faces(saved_model, SEEDS)
    with LocalFaces(exports / "onnx") as local:
        faces, local_z = local.from_seeds(SEEDS)
        assert_same_faces(faces, images)
        np.testing.assert_allclose(local_z, z, rtol=4e-7)
        assert local.generate(z[0]).shape == (1, 32, 32, 3)
        with pytest.raises(ValueError, match=r"z must be \[N, 100\]"):
            local.generate(np.zeros((2, 99)))
    with pytest.raises(ValueError, match="holds a 'litert' export"):
        LocalFaces(exports / "litert")


def test_local_faces_work_in_batches_and_take_seeds_by_the_one_rule(exports):
    """from_seeds runs bounded batches (memory does not grow with the number of seeds) and takes
    whole-number seeds only: not 1.5 as seed 1, '7' as 7, or nested lists flattened."""
    from facegan.client.local import BATCH, LocalFaces
    from facegan.errors import UsageError

    with LocalFaces(exports / "onnx") as local:
        calls = []
        run = local._session.run
        local._session = type(
            "Recording", (), {"run": lambda _, names, feeds: calls.append(len(feeds["z"])) or run(names, feeds)}
        )()
        faces, z = local.from_seeds(range(1000))
        assert faces.shape == (1000, 32, 32, 3) and z.shape == (1000, 100)
        assert calls == [BATCH] * (1000 // BATCH) + [1000 % BATCH]
        assert np.array_equal(faces[130:135], local.from_seeds(range(130, 135))[0])  # batches change nothing
        for bad in ([1.5], ["7"], [[1, 2]], [2**64], 1.5, "7", [True], []):
            with pytest.raises(UsageError):
                local.from_seeds(bad)


@pytest.mark.parametrize("model_format, file", [("onnx", "generator.onnx"), ("litert", "generator.tflite")])
def test_the_card_records_the_format_and_checksum(exports, model_format, file):
    folder = exports / model_format
    assert sorted(p.name for p in folder.iterdir()) == sorted([file, "facegan.json"])
    card = json.loads((folder / "facegan.json").read_text())
    assert card["model_format"] == model_format
    assert card["files"] == {file: {"sha256": sha256(folder / file), "bytes": (folder / file).stat().st_size}}
    assert card["inputs"] == {"z": {"dtype": "float32", "shape": [-1, 100]}}
    assert card["outputs"] == {"images": {"dtype": "uint8", "shape": [-1, 32, 32, 3]}}
    assert card["seed_to_z"].startswith("tf.random.stateless_normal") and card["resolution"] == 32


def test_bad_exports_exit_2_with_one_line_and_write_nothing(trained_run, model_dir, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    cases = [
        (("--format", "onnx", "--out", taken), "is not empty; it is never written over"),
        (("--format", "tflite", "--out", tmp_path / "x"), "invalid choice: 'tflite'"),
        (("--format", "onnx"), "format onnx needs out"),
        (("--format", "litert", "--out", tmp_path / "y", "--version", "3"), "version is for format savedmodel"),
        (("--out", tmp_path / "z"), "out is for format onnx or litert"),
        # inside a served base path, a portable export named like a version would fail to load
        (("--format", "onnx", "--out", model_dir / "2"), "is named like a version folder"),
    ]
    for args, message in cases:
        res = run_cli("export", "--run", trained_run, *args)
        assert res.returncode == 2, (args, res.stderr[-2000:])
        assert len(res.stderr.strip().splitlines()) == 1 and message in res.stderr, (args, res.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]  # nothing written, no staging left
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in model_dir.iterdir() if not p.name.startswith(".")) == ["1"]
