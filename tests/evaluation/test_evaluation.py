"""SWD, memorization and the EMA generator: properties and a direct float64 re-implementation."""

import json

import numpy as np
import pytest
from conftest import run_cli
from scipy import ndimage

from facegan.data.embedded import embedded_faces
from facegan.evaluation.memorization import memorization
from facegan.evaluation.swd import num_levels, swd


@pytest.fixture(scope="module")
def lfw():
    return embedded_faces(32)[0]


def test_real_vs_real_is_small_and_noise_is_large(lfw):
    a, b = lfw[:50], lfw[50:]
    noise = np.random.default_rng(0).integers(0, 256, a.shape, dtype=np.uint8)
    real_real, real_noise = np.mean(swd(a, b)), np.mean(swd(a, noise))
    assert real_real * 3 < real_noise, (real_real, real_noise)  # 43 vs 180 here: 50 faces a side is few


def test_symmetric_and_deterministic(lfw):
    a, b = lfw[:40], lfw[40:80]
    assert swd(a, b, seed=3) == swd(b, a, seed=3)
    assert swd(a, b, seed=3) == swd(a, b, seed=3)
    assert swd(a, b, seed=3) != swd(a, b, seed=4)
    assert swd(a, a, seed=3) == [0.0, 0.0]


def test_levels():
    assert (num_levels(16), num_levels(32), num_levels(64), num_levels(128)) == (1, 2, 3, 4)
    with pytest.raises(ValueError):
        num_levels(48)


def reference_swd(a, b, seed):
    """ProGAN's recipe written out plainly in float64: 2-D 5x5 kernel, loops, no vectorisation tricks."""
    kernel = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0

    def blur(img, gain=1.0):  # img: H, W, C
        return np.stack([ndimage.convolve(img[..., c], kernel * gain, mode="mirror") for c in range(img.shape[-1])], -1)

    def pyramid(images):
        levels = [np.asarray(images, np.float64)]
        for _ in range(num_levels(images.shape[1]) - 1):
            down = np.stack([blur(im)[::2, ::2] for im in levels[-1]])
            up = np.zeros_like(levels[-1])
            up[:, ::2, ::2] = down
            levels[-1] = levels[-1] - np.stack([blur(im, 4.0) for im in up])
            levels.append(down)
        return levels

    def descriptors(level, rng):
        n, h, w, _ = level.shape
        ys = rng.integers(3, h - 3, n * 128)
        xs = rng.integers(3, w - 3, n * 128)
        d = np.stack([level[i // 128, y - 3 : y + 4, x - 3 : x + 4] for i, (y, x) in enumerate(zip(ys, xs))])
        for c in range(d.shape[-1]):
            d[..., c] = (d[..., c] - d[..., c].mean()) / (d[..., c].std() + 1e-8)
        return d.reshape(len(d), -1)

    out = []
    for i, (la, lb) in enumerate(zip(pyramid(a), pyramid(b))):
        da = descriptors(la, np.random.default_rng([seed, i, 0]))
        db = descriptors(lb, np.random.default_rng([seed, i, 0]))
        rng = np.random.default_rng([seed, i, 1])
        repeats = []
        for _ in range(4):
            dirs = rng.standard_normal((da.shape[1], 128)).astype(np.float32).astype(np.float64)
            dirs /= np.linalg.norm(dirs, axis=0)
            repeats.append(
                np.mean([np.mean(np.abs(np.sort(da @ dirs[:, k]) - np.sort(db @ dirs[:, k]))) for k in range(128)])
            )
        out.append(np.mean(repeats) * 1e3)
    return out


def test_matches_a_direct_float64_implementation(lfw):
    a, b = lfw[:6], lfw[6:12]
    np.testing.assert_allclose(swd(a, b, seed=5), reference_swd(a, b, 5), rtol=1e-3)


def test_memorization_detects_copies(lfw):
    rng = np.random.default_rng(0)
    copies = memorization(lfw[:16], lfw, rng)
    assert copies["min_nn_distance"] < 1e-3 and copies["ratio"] < 0.01
    noise = memorization(np.random.default_rng(1).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8), lfw, rng)
    assert noise["ratio"] > 1.5
    fakes, nearest = noise["pairs"]
    assert fakes.shape == nearest.shape == (16, 32, 32, 3)


def test_ema_update_and_checkpoint_choice(tmp_path):
    import keras
    from conftest import tiny_config

    from facegan.training import checkpoints
    from facegan.training.gan import FaceGAN
    from facegan.training.models import build_discriminator, build_generator

    cfg = tiny_config()
    keras.utils.set_random_seed(0)
    g, d, g_ema = build_generator(cfg.model), build_discriminator(cfg.model), build_generator(cfg.model)
    gan = FaceGAN(g, d, seed=0, generator_ema=g_ema, ema_decay=0.995)
    gan.compile(keras.optimizers.Adam(1e-3, 0.5), keras.optimizers.Adam(1e-3, 0.5))
    gan.build_optimizers()
    before = [np.array(v.value) for v in g.variables]
    np.testing.assert_array_equal(np.array(g_ema.variables[0].value), before[0])  # starts as a copy
    gan.train_step(
        keras.ops.convert_to_tensor(np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 3)).astype("float32"))
    )
    beta = min(0.995, 2.0 / 11.0)  # warm-up after the first step (iterations = 1)
    for w0, w, e in zip(before, g.variables, g_ema.variables):
        np.testing.assert_allclose(np.array(e.value), beta * w0 + (1 - beta) * np.array(w.value), rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.array(g.variables[0].value), before[0])
    path = checkpoints.save(tmp_path, gan, 1, {}, keep=1)
    probe = build_generator(cfg.model)
    assert checkpoints.restore_generator(path, probe)["weights"] == "generator_ema"
    np.testing.assert_array_equal(np.array(probe.variables[0].value), np.array(g_ema.variables[0].value))
    assert checkpoints.restore_generator(path, probe, ema=False)["weights"] == "generator"
    np.testing.assert_array_equal(np.array(probe.variables[0].value), np.array(g.variables[0].value))


@pytest.mark.slow
def test_training_logs_swd_and_evaluate_cli(trained_run, tmp_path):
    last = json.loads((trained_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["swd"] > 0 and {"swd_32", "swd_16"} <= set(last)
    r = run_cli("evaluate", "--run", trained_run, "--json", "--out", tmp_path / "ev", "--seed", "2")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["images"] == 100 and report["source"]["weights"] == "generator_ema"
    assert set(report["swd_x1e3"]) == {"swd", "swd_32", "swd_16"}
    assert report["memorization"]["ratio"] > 0 and 0 <= report["discriminator"]["accuracy_real"] <= 1
    assert (tmp_path / "ev" / "memorization.png").is_file() and (tmp_path / "ev" / "report.json").is_file()
    realism = report["realism"]  # each measure beside the real-vs-real floor (halves of 50)
    assert "two seeded halves of 50" in realism["floor"]
    for measure in ("swd_x1e3", "spectrum"):
        m = realism[measure]
        assert m["floor"] > 0 and m["ratio"] == pytest.approx(m["generated"] / m["floor"])
    assert realism["spectrum"]["band_radii"] == [8, 13] and len(realism["spectrum"]["log10_ratio"]) == 6
    strict = realism["strict_face_rate"]
    assert strict["min_neighbors"] == 10 and strict["real_interval"][0] <= strict["real"] <= strict["real_interval"][1]
    again = json.loads(
        run_cli("evaluate", "--run", trained_run, "--json", "--out", tmp_path / "ev2", "--seed", "2").stdout
    )
    assert again["swd_x1e3"] == report["swd_x1e3"] and again["realism"] == realism  # deterministic for a seed
    for bad in (
        ["--run", tmp_path / "nope"],
        ["--run", trained_run, "--num-images", "0"],
        ["--run", trained_run, "--data", tmp_path / "missing.npz"],
        ["--model", trained_run],  # --model names a served model; a version folder is --version-dir
    ):
        r = run_cli("evaluate", *bad)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.slow
def test_evaluate_an_export(model_dir, tmp_path):
    r = run_cli("evaluate", "--version-dir", model_dir / "1", "--num-images", "64", "--out", tmp_path / "ev")
    assert r.returncode == 0, r.stderr
    assert "SWD x1e3" in r.stdout and "memorization" in r.stdout and "discriminator" not in r.stdout
    card = json.loads((model_dir / "1" / "assets.extra" / "facegan.json").read_text())
    assert card["quality"]["swd"] > 0 and card["weights"] == "generator_ema"
    assert 0 <= card["quality"]["face_rate"] <= 1 and card["quality"]["face_rate_real"] >= 0.8
