"""`facegan export`: layout, signatures, portability to TF Serving's loader, equality with facegan."""

import io
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_cli

from facegan.exporting.writer import export
from facegan.layout import RunDir
from facegan.sampling import generate, seed_to_z
from facegan.training import checkpoints
from facegan.training.models import build_generator

pytestmark = pytest.mark.slow

FORBIDDEN_OPS = {"XlaCallModule", "PyFunc", "PyFuncStateless", "EagerPyFunc"}


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    base = tmp_path_factory.mktemp("models")
    return trained_run, base, export(trained_run, base, "facegan")


@pytest.fixture(scope="module")
def reference_generator(trained_run):
    g = build_generator(RunDir(trained_run).load_config().model)
    checkpoints.restore_generator(checkpoints.latest(trained_run / "checkpoints"), g)
    return g


def test_layout_card_warmup_and_config(exported):
    run, base, v1 = exported
    assert v1 == base / "facegan" / "1"
    for name in ("saved_model.pb", "variables", "assets", "assets.extra"):
        assert (v1 / name).exists(), name
    card = json.loads((v1 / "assets.extra" / "facegan.json").read_text())
    assert card["latent_dim"] == 100 and card["resolution"] == 32 and card["latent_distribution"] == "normal(0,1)"
    assert card["run"] == run.name and card["epochs_trained"] == 2 and card["data"]["count"] == 100
    assert card["last_metrics"]["epoch"] == 2 and "philox" in card["seed_to_z"]
    assert set(card["versions"]) == {"facegan", "tensorflow", "keras"}

    from tensorflow_serving.apis import prediction_log_pb2

    logs = [
        prediction_log_pb2.PredictionLog.FromString(r.numpy())
        for r in tf.data.TFRecordDataset(str(v1 / "assets.extra" / "tf_serving_warmup_requests"))
    ]
    signatures = sorted(log.predict_log.request.model_spec.signature_name for log in logs)
    assert signatures == ["from_seed", "from_seed_png", "project_steps", "serving_default"]

    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse((base / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    (entry,) = config.model_config_list.config
    assert entry.name == "facegan" and entry.model_platform == "tensorflow"
    assert Path(entry.base_path) == (base / "facegan").resolve()


def test_second_export_is_version_2(exported):
    run, base, _ = exported
    v2 = export(run, base, "facegan")
    assert v2.name == "2" and (v2 / "saved_model.pb").is_file()
    assert not [p for p in (base / "facegan").iterdir() if not p.name.isdigit()]  # no staging left
    config = (base / "models.config").read_text()
    assert config.count('name: "facegan"') == 1


def _all_ops(path):
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel.FromString((Path(path) / "saved_model.pb").read_bytes())
    graph = sm.meta_graphs[0].graph_def
    ops = {n.op for n in graph.node}
    for fn in graph.library.function:
        ops |= {n.op for n in fn.node_def}
    return ops


def test_only_standard_kernels(exported):
    from tensorflow.python.framework import op_def_registry

    ops = _all_ops(exported[2])
    assert "StatelessRandomNormalV2" in ops  # seed_to_z is inside the graph
    assert "EncodePng" in ops  # from_seed_png encodes inside the graph
    assert not ops & FORBIDDEN_OPS
    assert [op for op in ops if op_def_registry.get(op) is None] == []


def test_each_weight_is_stored_once(exported, reference_generator):
    weights = sum(int(np.prod(v.shape)) * 4 for v in reference_generator.variables)  # float32
    stored = sum(p.stat().st_size for p in (exported[2] / "variables").iterdir())
    names = [name for name, _ in tf.train.list_variables(str(exported[2] / "variables" / "variables"))]
    assert len(names) - 1 == len(reference_generator.variables)  # + the object graph
    assert weights <= stored < 1.05 * weights


def test_cpp_loader_like_tf_serving(exported, reference_generator):
    path = str(exported[2])
    z = seed_to_z([11, 12, 13], 100).numpy()
    with tf.Graph().as_default(), tf.compat.v1.Session() as sess:
        meta = tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
        default, by_seed = meta.signature_def["serving_default"], meta.signature_def["from_seed"]
        assert default.method_name == by_seed.method_name == "tensorflow/serving/predict"
        images = sess.run(default.outputs["images"].name, {default.inputs["z"].name: z})
        seeded, seeded_z = sess.run(
            [by_seed.outputs["images"].name, by_seed.outputs["z"].name],
            {by_seed.inputs["seed"].name: np.array([11, 12, 13], np.int64)},
        )
        png = meta.signature_def["from_seed_png"]
        pngs = sess.run(png.outputs["image_bytes"].name, {png.inputs["seed"].name: np.array([11, 12, 13], np.int64)})
        # the projection's While loop of Adam steps runs in the C++ runtime too, with the same answer
        project = meta.signature_def["project_steps"]
        feed = {project.inputs["image"].name: seeded[:1], project.inputs["steps"].name: np.int32(5)}
        projected_z = sess.run(project.outputs["z"].name, feed)
    eager = tf.saved_model.load(path).signatures["project_steps"](image=tf.constant(seeded[:1]), steps=tf.constant(5))
    np.testing.assert_allclose(projected_z, eager["z"].numpy(), rtol=1e-4, atol=1e-5)
    from PIL import Image

    decoded = np.stack([np.asarray(Image.open(io.BytesIO(p))) for p in pngs])
    np.testing.assert_array_equal(decoded, seeded)
    assert images.dtype == np.uint8 and images.shape == (3, 32, 32, 3)
    expected = generate(reference_generator, z)
    assert np.abs(images.astype(int) - expected).max() <= 1
    np.testing.assert_allclose(seeded_z, z, rtol=1e-6)
    assert np.abs(seeded.astype(int) - expected).max() <= 1


def test_tf_saved_model_load_and_batch_sizes(exported, reference_generator):
    loaded = tf.saved_model.load(str(exported[2]))
    for n in (1, 5, 64):
        out = loaded.signatures["from_seed"](seed=tf.range(n, dtype=tf.int64))
        assert out["images"].shape == (n, 32, 32, 3) and out["z"].shape == (n, 100)
    z = np.random.default_rng(1).standard_normal((4, 100)).astype(np.float32)
    images = loaded.signatures["serving_default"](z=tf.constant(z))["images"].numpy()
    assert np.abs(images.astype(int) - generate(reference_generator, z)).max() <= 1


def test_from_seed_equals_facegan_sample(exported, tmp_path):
    from facegan.images import load_png

    run, _, path = exported
    assert run_cli("sample", "--run", run, "--seeds", "3,9", "--out", tmp_path).returncode == 0
    out = tf.saved_model.load(str(path)).signatures["from_seed"](seed=tf.constant([3, 9], tf.int64))
    for i, seed in enumerate((3, 9)):
        diff = np.abs(out["images"].numpy()[i].astype(int) - load_png(tmp_path / f"seed{seed:04d}.png"))
        assert diff.max() <= 1


def test_export_errors(exported, tmp_path):
    run, base, _ = exported
    before = sorted(p.name for p in (base / "facegan").iterdir())

    def fails(*args):
        res = run_cli("export", "--run", run, *args)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        return lines[-1]

    assert "already exists" in fails("--base-path", base, "--version", "1")
    assert "positive integer" in fails("--base-path", base, "--version", "two")
    assert "does not exist" in fails("--base-path", base, "--checkpoint", tmp_path / "missing.npz")
    corrupt = tmp_path / "ckpt-0009.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really")
    assert "corrupt" in fails("--base-path", base, "--checkpoint", corrupt)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert "cannot write" in fails("--base-path", blocker / "models")
    assert sorted(p.name for p in (base / "facegan").iterdir()) == before


def test_export_refuses_bad_versions_and_names(trained_run, tmp_path):
    base = tmp_path / "models"
    for version in ("9223372036854775808", "0", "007x", "²", "-1"):
        res = run_cli("export", "--run", trained_run, "--base-path", base, "--version", version)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    for name in ("..", ".", "a/b", "", "-x", "../../etc"):
        res = run_cli("export", "--run", trained_run, "--base-path", base, "--name", name)
        assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, (name, res.stderr)
    assert not base.exists() or not any(base.rglob("*"))


def test_export_on_a_full_disk_exits_2_and_leaves_nothing(trained_run, tmp_path):
    """A file-size limit (as a full disk would) hits while the SavedModel is written."""
    base = tmp_path / "models"
    (base / "facegan").mkdir(parents=True)
    code = (
        "import resource, sys\n"
        "from facegan.cli import entry\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, 1_000_000))\n"  # the weights are 7.6 MB
        f"sys.argv = ['facegan', 'export', '--run', {str(trained_run)!r}, '--base-path', {str(base)!r}]\n"
        "sys.exit(entry())\n"
    )
    res = subprocess.run(["python", "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    assert len(res.stderr.strip().splitlines()) == 1 and "cannot write the export" in res.stderr, res.stderr
    assert list((base / "facegan").iterdir()) == []
