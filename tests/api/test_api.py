"""facegan's Python API (facegan/api/): train -> Run -> export -> serve -> clients, on a tiny run,
and its promises: `import facegan` stays free of TensorFlow, bad options fail before any write, and
the command line means the same as the keywords."""

import argparse
import re
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT

import facegan
from facegan.api.train_options import OPTIONS, config_for
from facegan.commands import train as train_command
from facegan.errors import UsageError


def test_importing_facegan_and_its_api_loads_no_framework():
    code = (
        "import sys, facegan, facegan.api\n"
        "names = [facegan.train, facegan.Run, facegan.export, facegan.serve, facegan.FaceClient, facegan.grid]\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'jax', 'gradio', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        facegan.trian  # noqa: B018


def test_facegans_names_are_the_apis_and_each_resolves():
    """facegan's lazy table and facegan.api's __all__ list the same names (ruff needs the static
    list there; this keeps the two one list), and every lazy name loads."""
    import facegan.api

    assert sorted(facegan.api.__all__) == sorted(n for n, m in facegan._LAZY.items() if m == "facegan.api")
    for name in facegan.__all__:
        assert getattr(facegan, name) is not None, name


def test_flags_and_keywords_make_the_same_config():
    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    args = parser.parse_args(["--batch-size", "64", "--augment", "translation,cutout", "--no-flip", "--g-lr", "1e-4"])
    from_flags = config_for(None, train_command.options(args))
    from_keywords = config_for(
        None, {"batch_size": 64, "augment": ("translation", "cutout"), "flip": False, "g_lr": 1e-4}
    )
    assert from_flags == from_keywords
    assert from_keywords.train.batch_size == 64 and from_keywords.data.flip is False
    assert config_for(None, {"augment": "translation,cutout"}) == config_for(
        None, {"augment": ["translation", "cutout"]}
    )
    assert len({o.keyword for o in OPTIONS}) == len({o.flag for o in OPTIONS}) == len(OPTIONS)


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"epoch": 2}, "unknown training option 'epoch' (did you mean epochs?)"),
        ({"epochs": "two"}, "cannot read 'two' as int"),
        ({"epochs": 2.5}, "epochs must be a number (int)"),
        ({"epochs": True}, "epochs must be a number (int)"),
        ({"flip": 1}, "flip must be True or False"),
        ({"strategy": "nope"}, "strategy must be one of"),
        ({"augment": 3}, "augment must be names"),
        ({"epochs": 0}, "epochs must be >= 1"),
        ({"data": "missing.npz"}, "data file missing.npz does not exist"),
        ({"progress": "loud"}, "progress must be one of auto, bar, lines, notebook"),
        ({"checkpoint": 3}, "checkpoint goes with resume"),
        ({"auto_resume": True}, "auto_resume needs run_dir"),
        # each refused before any file is written or any step trained
        ({"seed": 2**80}, "seed must be in 0..4294967295"),
        ({"seed": -1}, "seed must be in 0..4294967295"),
        ({"g_lr": float("nan")}, "g_lr must be a finite number > 0, got nan"),
        ({"d_lr": float("inf")}, "d_lr must be a finite number > 0, got inf"),
        ({"batch_size": 10**9}, "batch size 1000000000 is larger than the data set (100 images)"),
        ({"run_dir": "FILE"}, "is a file, not a folder"),
    ],
)
def test_bad_training_options_fail_before_anything_is_written(tmp_path, options, words):
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    options = {k: a_file if v == "FILE" else v for k, v in options.items()}
    with pytest.raises(UsageError) as e:
        facegan.train(runs_root=tmp_path / "runs", **options)
    assert words in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "runs").exists()
    assert a_file.read_text() == "not a folder"


def test_a_runs_root_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(UsageError, match="runs_root .* is a file, not a folder"):
        facegan.train(runs_root=tmp_path / "runs", epochs=1)


def test_bad_training_options_are_refused_before_tensorflow_loads():
    """A misspelt keyword is refused before TensorFlow loads (it costs seconds and ~900 MB)."""
    code = (
        "import sys, facegan\n"
        "for options in ({'epoch': 2}, {'progress': 'loud'}, {'g_lr': float('nan')}, {'seed': -1}):\n"
        "    try:\n        facegan.train(**options)\n"
        "    except facegan.UsageError as e:\n        print(e)\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 5 and lines[-1] == "[]", r.stdout + r.stderr


def test_other_bad_calls_get_one_line_errors(tmp_path):
    with pytest.raises(UsageError, match="is not a run folder"):
        facegan.Run(tmp_path)
    with pytest.raises(UsageError, match="is not a run folder"):
        facegan.export(tmp_path)
    with pytest.raises(UsageError, match="unsupported format 'gif'"):
        facegan.export(tmp_path, format="gif")
    with pytest.raises(UsageError, match="format onnx needs out"):
        facegan.export(tmp_path, format="onnx")
    with pytest.raises(UsageError, match="version must be a positive integer"):
        facegan.export(tmp_path, version="two")
    with pytest.raises(UsageError, match="unknown server option 'prot'"):
        facegan.serve(tmp_path, prot=1)
    with pytest.raises(UsageError, match="REST port must differ"):
        facegan.serve(tmp_path, port=8600, rest_port=8600)
    with pytest.raises(UsageError, match="one of them"):
        facegan.serve()


def _closed(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as s:
        return s.connect_ex((host, int(port))) != 0


@pytest.mark.slow
def test_train_export_serve_and_call_through_the_api(tmp_path):
    run = facegan.train(epochs=2, preview_every=1, eval_images=64, run_dir=tmp_path / "run", progress="lines")
    assert isinstance(run, facegan.Run) and run.path == tmp_path / "run"
    assert [row["epoch"] for row in run.metrics] == [1, 2]
    assert set(run.quality) == {"epoch", "swd", "face_rate", "face_rate_real"} and run.quality["epoch"] == 2
    assert run.config.train.epochs == 2 and run.config.name == "fast32"
    assert [p.name for p in run.previews] == ["epoch-0001.png", "epoch-0002.png"]
    assert run.preview().size == run.preview(2).size == (352, 208)
    assert run.evolution.path.name == "evolution.gif" and "data:image/gif;base64," in run.evolution._repr_html_()
    faces = run.faces([0, 1, 2])
    assert faces.shape == (3, 32, 32, 3) and faces.dtype == np.uint8
    assert run.sampled_from[1] == 2

    resumed = facegan.train(resume=run, epochs=3, progress="lines")  # only epochs may change
    assert resumed.path == run.path and [row["epoch"] for row in resumed.metrics] == [1, 2, 3]
    with pytest.raises(UsageError, match="only epochs may change"):
        facegan.train(resume=run, epochs=4, batch_size=8)
    with pytest.raises(UsageError, match=r"\(got runs_root\)"):
        facegan.train(resume=run, epochs=4, runs_root=tmp_path / "elsewhere")

    older = facegan.export(run.path, base_path=tmp_path / "models", checkpoint=2)
    assert older.path == tmp_path / "models" / "facegan" / "1" and older.version == 1
    assert older.card["epochs_trained"] == 2 and "from_seed" in older.card["signatures"]
    exported = resumed.export(base_path=tmp_path / "models")  # the next version, from the newest checkpoint
    assert exported.version == 2 and exported.card["epochs_trained"] == 3

    local = resumed.faces(range(4))
    with facegan.serve(exported) as server:
        assert server.models == {"facegan": [2]}  # TF Serving's default policy: the latest version
        assert server.rest_url is not None and server.grpc_address.startswith("127.0.0.1:")
        with server.client() as client:
            served, z = client.from_seeds(range(4))
        with server.rest_client() as rest:
            over_rest = rest.generate(z)
        address = server.grpc_address
    assert _closed(address)  # the block's end stopped it
    assert np.abs(served.astype(int) - local).max() <= 1  # the run and its export: the same faces
    assert np.array_equal(served, over_rest)
    with facegan.serve(str(exported.base_path), rest_port=None) as by_path:  # the docs' form: a str path
        assert by_path.models == {"facegan": [2]}
    assert not np.array_equal(run.faces(range(4), checkpoint=2), local)  # epoch 2's weights are not epoch 3's


def _threads() -> set[str]:
    import threading

    return {t.name for t in threading.enumerate()}


def _busy_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.parametrize("busy", ["rest_port", "monitoring_port", "port"])
def test_a_failed_serve_leaves_no_port_bound_and_no_thread_behind(model_dir, busy):
    """Every port is bound before anything loads: a busy REST or monitoring port is one UsageError
    up front, and leaves no port bound and no thread behind."""
    before = _threads()
    with _busy_port() as taken:
        ports = {"port": 0, "rest_port": 0, "monitoring_port": None, busy: taken.getsockname()[1]}
        if busy != "port":  # a fixed gRPC port, to see that it is free again afterwards
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                ports["port"] = s.getsockname()[1]
        with pytest.raises(UsageError, match=r"cannot listen on 127\.0\.0\.1:\d+"):
            facegan.serve(model_dir, **ports)
    if busy != "port":
        assert _free(ports["port"])
    assert _threads() <= before | {"MainThread"}, _threads() - before


def test_serve_with_a_busy_monitoring_port_is_one_line_before_any_load(model_dir):
    with _busy_port() as taken:
        port = taken.getsockname()[1]
        command = ["serve", "--model-base-path", model_dir, "--port", "0", "--monitoring-port", port]
        r = subprocess.run(
            [sys.executable, "-m", "facegan.cli", *map(str, command)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().splitlines() == [
        f"facegan serve: error: cannot listen on 127.0.0.1:{port} for metrics (Address already in use)"
    ]


@pytest.mark.parametrize(
    "options, words",
    [
        ({"port": "19530"}, "port must be a whole number in 0..65535, got '19530'"),
        ({"rest_port": 1.5}, "rest_port must be a whole number in 0..65535, got 1.5"),
        ({"monitoring_port": True}, "monitoring_port must be a whole number in 0..65535, got True"),
    ],
)
def test_serve_refuses_ports_that_are_not_whole_numbers(model_dir, options, words):
    with pytest.raises(UsageError, match=re.escape(words)):
        facegan.serve(model_dir, **options)


def test_serve_refuses_a_run_folder_and_a_version_folder(trained_run, model_dir):
    with pytest.raises(UsageError, match="is a training run: export it first"):
        facegan.serve(trained_run)
    with pytest.raises(UsageError, match=f"is one version of a model: serve the folder above it, {model_dir}"):
        facegan.serve(model_dir / "1")


def test_leaving_an_inner_with_block_keeps_the_server_running(model_dir):
    with facegan.serve(model_dir, rest_port=None) as server:
        with server:
            pass
        assert server.models == {"facegan": [1]}  # still running: the outer block has not ended
        address = server.grpc_address
    assert _closed(address)


def test_a_metrics_line_cut_short_by_a_kill_loses_only_itself(trained_run, tmp_path):
    """A run killed while writing metrics.jsonl leaves a truncated last line: Run.metrics and
    quality_line() skip it and keep the whole history before it."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    whole = facegan.Run(run).metrics
    assert len(whole) == 2
    text = (run / "metrics.jsonl").read_text()
    (run / "metrics.jsonl").write_text(text + text.splitlines()[-1][:25])  # a third line, cut short
    cut = facegan.Run(run)
    assert cut.metrics == whole
    assert cut.quality_line().startswith("quality after 2 epochs")
    (run / "metrics.jsonl").write_text("{not json\n" + text)  # damage that no kill makes: said, in one line
    with pytest.raises(UsageError, match=r"metrics.jsonl line 1 is not JSON"):
        _ = facegan.Run(run).metrics


def test_run_faces_take_seeds_by_the_one_rule_and_work_in_chunks(trained_run, monkeypatch):
    """Run.faces takes whole-number seeds only (1.5 is not seed 1) and generates them in bounded batches."""
    from facegan.api import runs

    run = facegan.Run(trained_run)
    for bad in ([1.5], ["7"], [[1, 2]], [2**64]):
        with pytest.raises(UsageError, match="seed"):
            run.faces(bad)
    whole = run.faces(range(7))
    monkeypatch.setattr(runs, "FACES_CHUNK", 3)
    passes = []
    generate = facegan.Run.generate
    monkeypatch.setattr(facegan.Run, "generate", lambda self, z, c=None: passes.append(len(z)) or generate(self, z, c))
    assert np.array_equal(run.faces(range(7)), whole)
    assert passes == [3, 3, 1]
