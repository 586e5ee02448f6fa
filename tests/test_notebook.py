"""notebooks/facegan.ipynb: committed with its outputs cleared, and executed headless (nbclient, a
real IPython kernel) with FACEGAN_NOTEBOOK=tiny; every cell must run and show what it is for."""

import base64
import io
import os
import time

import nbformat
import pytest
from conftest import ROOT
from PIL import Image

from facegan.native_logs import is_native_noise

NOTEBOOK = ROOT / "notebooks" / "facegan.ipynb"


def test_the_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert len(code) >= 15
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]


def _images(cell) -> list[Image.Image]:
    found = []
    for output in cell.outputs:
        data = output.get("data", {})
        if "image/png" in data:
            found.append(Image.open(io.BytesIO(base64.b64decode(data["image/png"]))))
    return found


def _text(cell) -> str:
    parts = []
    for output in cell.outputs:
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/plain", ""))
    return "".join(parts)


def _cell(nb, words: str):
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and words in c.source]
    return cell


HIDE = """
import importlib.machinery, sys
HIDDEN = {hidden!r}
# facegan: the editable install's finder goes (a .pth added it); the rest: the path finder skips them
sys.meta_path[:] = [f for f in sys.meta_path if not ('facegan' in HIDDEN and 'facegan' in getattr(f, '__module__', ''))]
_find = importlib.machinery.PathFinder.find_spec
importlib.machinery.PathFinder.find_spec = (
    lambda name, path=None, target=None: None if name.partition('.')[0] in HIDDEN else _find(name, path, target)
)
"""


@pytest.mark.parametrize(
    "hidden, first",
    [
        ({"facegan"}, "facegan is not installed"),
        ({"matplotlib", "ipywidgets"}, "ipywidgets, matplotlib are not installed"),
    ],
)
def test_the_install_cell_outside_a_checkout_says_what_to_set_in_one_line(tmp_path, hidden, first):
    """Colab's /content: no checkout above, no FACEGAN_SOURCE; facegan, or the notebook extra's
    modules, not importable in the kernel (a sitecustomize hides them)."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(HIDE.format(hidden=hidden))
    content = tmp_path / "content"
    content.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells = [nb.cells[1]]  # the install cell
    saved = {key: os.environ.get(key) for key in ("PYTHONPATH", "FACEGAN_SOURCE")}
    os.environ["PYTHONPATH"] = str(blocker)
    os.environ.pop("FACEGAN_SOURCE", None)
    try:
        client = NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(content)}})
        with pytest.raises(CellExecutionError):
            client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    (error,) = [o for o in nb.cells[0].outputs if o.output_type == "error"]
    assert error.ename == "NoFacegan"
    assert error.traceback == [
        f"NoFacegan: {first} and this folder is no facegan checkout: set FACEGAN_SOURCE to facegan's "
        "git URL or folder (os.environ['FACEGAN_SOURCE'] = '...'), then run this cell again: "
        "it installs facegan[notebook]"
    ]
    assert not list(content.iterdir())  # nothing installed, nothing written


@pytest.mark.slow
def test_the_notebook_runs_and_shows_the_lecture(tmp_path):
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    os.environ["FACEGAN_NOTEBOOK"] = "tiny"
    log_level = os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as in a user's kernel: TensorFlow's notices on
    try:
        client = NotebookClient(
            nb,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},  # runs/ and models/ go here
        )
        client.execute()  # raises CellExecutionError, with the cell and its traceback, if any cell fails
    finally:
        del os.environ["FACEGAN_NOTEBOOK"]
        if log_level is not None:
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = log_level
        nbformat.write(nb, tmp_path / "executed.ipynb")  # to look at (pytest --basetemp keeps it)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    printed = "".join(_text(c) for c in nb.cells if c.cell_type == "code").encode()
    noise = [line for line in printed.splitlines() if is_native_noise(line)]
    assert not noise, noise[:3]  # facegan.hide_native_logs() keeps TensorFlow's C++ lines off the page

    (real,) = _images(_cell(nb, "facegan.real_faces()"))
    assert real.size == (8 * 64 + 9 * 8, 4 * 64 + 5 * 8)  # 32 faces at 2x, 8 per row
    assert "Total params" in _text(_cell(nb, "networks.generator.summary()"))
    assert "Total params" in _text(_cell(nb, "networks.discriminator.summary()"))
    assert "def compute_gradients" in _text(_cell(nb, "inspect.getsource"))

    train = _cell(nb, "facegan.train(")
    (preview,) = _images(train)  # one image, replaced in place epoch after epoch: not one per epoch
    assert preview.size == (2 * 352, 2 * 208)  # fast32's 4x7 grid of 32 px faces, at 2x
    last = Image.open(tmp_path / "runs" / "00000-fast32" / "previews" / "epoch-0002.png")
    assert preview.resize(last.size, Image.Resampling.NEAREST).tobytes() == last.convert("RGB").tobytes()
    bars = [o for o in train.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert bars, "no tqdm.auto bar"
    text = _text(train)
    assert "quality after 2 epochs: face rate" in text and "epoch 1/2  g_loss" not in text  # no line per epoch

    assert _images(_cell(nb, "plt.show()"))  # the losses
    gif = _cell(nb, "run.evolution")
    html = "".join(o.get("data", {}).get("text/html", "") for o in gif.outputs)
    frames = Image.open(io.BytesIO(base64.b64decode(html.split("base64,")[1].split('"')[0])))
    assert frames.format == "GIF" and frames.n_frames == 2

    assert "version 1" in _text(_cell(nb, "run.export("))
    (served,) = _images(_cell(nb, "facegan.serve(exported)"))
    assert served.size == (8 * 96 + 9 * 12, 2 * 96 + 3 * 12)
    assert "the run's: 0" in _text(_cell(nb, "run.faces(range(16))"))
    for words in ("facegan.slerp(", "direction /= np.linalg.norm", "psi * z[:8]"):
        assert _images(_cell(nb, words)), words
    demo = _cell(nb, "facegan.demo(server)")
    assert "<iframe" in "".join(o.get("data", {}).get("text/html", "") for o in demo.outputs)
    assert "Serving(stopped)" in _text(_cell(nb, "server.stop()"))


@pytest.mark.slow
def test_interrupting_the_kernel_stops_training_with_a_checkpoint(tmp_path):
    """Jupyter's Interrupt (SIGINT to the kernel) is training's Ctrl-C: it stops after the current
    step, saves a checkpoint, and the call returns the run."""
    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        client.execute("import facegan\nrun = facegan.train(epochs=500, preview_every=1, checkpoint_every=100)")
        previews = tmp_path / "runs" / "00000-fast32" / "previews"
        deadline = time.monotonic() + 240
        while not (previews / "epoch-0002.png").exists():  # well into training: the step is compiled
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=120)
        assert reply["content"]["status"] == "ok", reply["content"]
        reply = client.execute_interactive("print(len(run.metrics), [p.name for p in run.checkpoints])", timeout=60)
        assert reply["content"]["status"] == "ok"
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    checkpoints = sorted(p.name for p in (tmp_path / "runs" / "00000-fast32" / "checkpoints").iterdir())
    epochs = len((tmp_path / "runs" / "00000-fast32" / "metrics.jsonl").read_text().splitlines())
    assert 2 <= epochs < 500 and checkpoints == [f"ckpt-{epochs:04d}.npz"]
