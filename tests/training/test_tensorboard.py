"""TensorBoard events in the run folder: scalars, SWD, the preview grid, weight histograms, on
both backends, and a resumed run that continues the same curves."""

import struct
import subprocess
import sys

import pytest
from conftest import ROOT, tiny_config

pytestmark = pytest.mark.slow


def read_events(folder):
    """Every Event in the folder's event files, in file order (TFRecord framing, no TensorFlow)."""
    from tensorboardX.proto.event_pb2 import Event

    events = []
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack_from("<Q", data, offset)
            events.append(Event.FromString(data[offset + 12 : offset + 12 + length]))
            offset += 12 + length + 4
    return events


def curves(events):
    """{tag: [steps]} as TensorBoard shows them: a START session log at step s (a resumed run's
    purge_step) hides what came before it at steps >= s."""
    seen: dict[str, list] = {}
    for event in events:
        if event.HasField("session_log") and event.session_log.status == event.session_log.START:
            for tag in seen:
                seen[tag] = [(step, kind) for step, kind in seen[tag] if step < event.step]
        for value in event.summary.value:
            kind = value.WhichOneof("value")
            seen.setdefault(value.tag, []).append((event.step, kind))
    return seen


def test_scalars_swd_previews_and_histograms(tmp_path):
    from facegan.training.run import train

    run = train(tiny_config(3, eval_every=2, histogram_every=2), run_dir=tmp_path / "run", verbose=0)
    seen = curves(read_events(run / "tensorboard"))
    for tag in ("train/g_loss", "train/d_loss", "train/d_acc_real", "train/g_grad_norm", "speed/images_per_sec"):
        assert [step for step, _ in seen[tag]] == [1, 2, 3], tag
    assert [step for step, _ in seen["quality/swd"]] == [2, 3]  # every 2 epochs and at the end
    assert [step for step, _ in seen["quality/face_rate"]] == [2, 3]  # with SWD, and its ceiling
    assert [step for step, _ in seen["quality/face_rate_real"]] == [2, 3]
    assert [(step, kind) for step, kind in seen["previews"]] == [(1, "image"), (2, "image"), (3, "image")]
    histograms = [tag for tag in seen if tag.startswith("weights/generator/")]
    assert histograms and [step for step, _ in seen[histograms[0]]] == [2, 3]
    assert any(tag.startswith("weights/discriminator/") for tag in seen)


def test_a_resumed_run_continues_the_same_curves(tmp_path):
    from facegan.training.run import train

    run = train(tiny_config(3), run_dir=tmp_path / "run", verbose=0)
    train(resume=run, epochs=4, from_checkpoint=2, verbose=0)  # redo epoch 3, then 4
    seen = curves(read_events(run / "tensorboard"))
    assert [step for step, _ in seen["train/g_loss"]] == [1, 2, 3, 4]  # no step twice, none missing
    assert [step for step, _ in seen["previews"]] == [1, 2, 3, 4]


def test_no_tensorboard_and_the_jax_path_without_tensorflow(tmp_path):
    from facegan.training.run import train

    run = train(tiny_config(1, tensorboard=False), run_dir=tmp_path / "off", verbose=0)
    assert not (run / "tensorboard").exists()
    code = (
        "import sys\nsys.modules['tensorflow'] = None\nsys.path.insert(0, 'tests')\n"
        "from conftest import tiny_config\nfrom facegan.training.run import train\n"
        f"train(tiny_config(2), run_dir={str(tmp_path / 'jax')!r}, verbose=0)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env={**__import__("os").environ, "KERAS_BACKEND": "jax"})  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    seen = curves(read_events(tmp_path / "jax" / "tensorboard"))
    assert [step for step, _ in seen["train/d_grad_norm"]] == [1, 2] and "previews" in seen
