"""The face rate: OpenCV's face detector finds the real faces, not noise, not LFW's non-face
crops, not an untrained generator; it is deterministic; evaluate and training report it; without
the metrics extra evaluate says how to get it and reports the rest."""

import json
import sys

import numpy as np
import pytest
from conftest import run_cli, tiny_config

from facegan.data.embedded import embedded_faces
from facegan.evaluation import face_rate
from facegan.evaluation.face_rate import FaceDetector


@pytest.fixture(scope="module")
def detector():
    return FaceDetector()


@pytest.fixture(scope="module")
def lfw():
    return embedded_faces(32)[0]  # the 100 real faces at 32 px RGB, as training sees them


def test_real_faces_reach_the_ceiling_and_non_faces_do_not(detector, lfw):
    from skimage.data import lfw_subset

    assert detector.rate(lfw).rate >= 0.8  # 0.88 here: small gray crops, some turned or shadowed
    non_faces = np.repeat((lfw_subset()[100:, ..., None] * 255).round().astype(np.uint8), 3, axis=-1)
    assert detector.rate(non_faces).rate <= 0.03  # LFW's own non-face crops (0.00 here)


def test_noise_and_an_untrained_generator_are_near_zero(detector):
    import keras

    from facegan.sampling import generate
    from facegan.training.models import build_generator

    noise = np.random.default_rng(0).integers(0, 256, (200, 32, 32, 3), dtype=np.uint8)
    assert detector.rate(noise).rate <= 0.02
    keras.utils.set_random_seed(0)
    untrained = generate(build_generator(tiny_config().model), np.random.default_rng(1).standard_normal((200, 100)))
    assert detector.rate(untrained).rate <= 0.02


def test_deterministic_and_boxes_in_the_images_own_pixels(detector, lfw):
    first = detector.rate(lfw[:40])
    second = detector.rate(lfw[:40])
    assert first.figures() == second.figures()
    assert all(np.array_equal(a, b) for a, b in zip(first.boxes, second.boxes))
    found = [b for b in first.boxes if len(b)]
    assert found
    for boxes in found:  # detected on the 64 px upscale, reported in the 32 px image
        x, y, w, h = boxes[0]
        assert x >= 0 and y >= 0 and x + w <= 33 and y + h <= 33 and w >= 32 // 3  # 33: rounding x and w apart


def test_a_stricter_threshold_finds_fewer(lfw):
    loose = FaceDetector(min_neighbors=1).rate(lfw).faces
    strict = FaceDetector(min_neighbors=12).rate(lfw).faces
    assert loose > strict


def test_sheet_puts_faces_above_the_line(detector, lfw):
    found = detector.rate(lfw[:20])
    faces = np.stack([img for img, boxes in zip(lfw[:20], found.boxes) if len(boxes)][:8])
    mixed = np.concatenate([faces, np.zeros((8, 32, 32, 3), np.uint8)])
    result = detector.rate(mixed)
    sheet = face_rate.sheet(mixed, result, cols=4, rows=4)
    white = np.flatnonzero((sheet == 255).all(axis=(1, 2)))
    assert len(white) == 4  # the separating line, 4 px
    above, below = sheet[: white[0]], sheet[white[-1] + 1 :]
    green = (above[..., 1] == 255) & (above[..., 0] == 0) & (above[..., 2] == 0)
    assert green.sum() > 0  # boxes drawn on the faces
    assert below.max() == 0  # the black images, no box
    assert sheet.shape[1] == 4 + 4 * (64 + 4)  # tiles enlarged to the detector's 64 px


def test_missing_extra_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` now raises ImportError
    assert not face_rate.available()
    with pytest.raises(face_rate.DetectorMissing, match=r"pip install 'facegan\[metrics\]'"):
        FaceDetector()


@pytest.mark.slow
def test_evaluate_reports_the_face_rate_and_training_logs_it(trained_run, tmp_path):
    last = json.loads((trained_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 <= last["face_rate"] <= 0.2 and last["face_rate_real"] >= 0.8  # 2 epochs: blobs, not faces
    r = run_cli("evaluate", "--run", trained_run, "--out", tmp_path / "ev", "--seed", "3")
    assert r.returncode == 0, r.stderr
    assert "face rate: " in r.stdout and "(the ceiling)" in r.stdout, r.stdout
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    f = report["face_rate"]
    assert f["images"] == 100 and f["real"] >= 0.8 and f["min_neighbors"] == face_rate.MIN_NEIGHBORS
    assert (tmp_path / "ev" / "faces.png").is_file()
    again = run_cli("evaluate", "--run", trained_run, "--json", "--out", tmp_path / "ev2", "--seed", "3")
    assert json.loads(again.stdout)["face_rate"] == f  # deterministic for a seed
    assert (tmp_path / "ev2" / "faces.png").read_bytes() == (tmp_path / "ev" / "faces.png").read_bytes()
    bad = run_cli("evaluate", "--run", trained_run, "--face-threshold", "0")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


@pytest.mark.slow
def test_evaluate_without_the_extra_reports_the_rest(trained_run, tmp_path):
    # a stand-in cv2 that fails to import, first on the path: what a machine without the extra sees
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "cv2.py").write_text("raise ImportError('No module named cv2')\n")
    import os

    env = {**os.environ, "PYTHONPATH": str(blocker)}
    r = run_cli("evaluate", "--run", trained_run, "--out", tmp_path / "ev", env=env)
    assert r.returncode == 0, r.stderr
    assert "face rate: not measured (pip install 'facegan[metrics]'" in r.stdout
    assert "SWD x1e3" in r.stdout and not (tmp_path / "ev" / "faces.png").exists()
    assert json.loads((tmp_path / "ev" / "report.json").read_text())["face_rate"] is None
