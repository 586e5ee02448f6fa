"""The JAX backend: the same models and run folders, a stateless jitted step, no TensorFlow needed.

Keras picks its backend at import, so each check runs in a fresh interpreter with KERAS_BACKEND=jax.
"""

import json

import numpy as np
import pytest
from conftest import JAX_LOAD_NETWORKS, ROOT, run_cli, run_jax, save_networks

pytestmark = pytest.mark.slow


SIGN_CHECK = """
import jax, jax.numpy as jnp, keras, numpy as np
from facegan.config import ModelConfig
from facegan.training import jax_step
from facegan.training.gan import FaceGAN
from facegan.training.models import build_discriminator, build_generator

cfg = ModelConfig(resolution=32)
keras.utils.set_random_seed(1)
g, d = build_generator(cfg), build_discriminator(cfg)
gan = FaceGAN(g, d, seed=5)
gan.compile(keras.optimizers.Adam(1e-3, beta_1=0.5), keras.optimizers.Adam(1e-3, beta_1=0.5))
gan.build_optimizers()
state, step = jax_step.make_step(gan)
real = jnp.asarray(np.random.default_rng(3).uniform(-1, 1, (8, 32, 32, 3)).astype("float32"))
new, logs = step(state, real)
assert all(np.isfinite(float(v)) for v in logs.values()), logs

# Replay the forward pass independently: same z, same dropout state, plain softplus losses.
z = jax_step.latent(jax_step.base_key(gan), 0, 8, cfg.latent_dim)
def losses(g_tv, d_tv):
    fake, _ = g.stateless_call(g_tv, state["g_ntv"], z, training=True)
    real_logits, d_ntv = d.stateless_call(d_tv, state["d_ntv"], real, training=True)
    fake_logits, _ = d.stateless_call(d_tv, d_ntv, fake, training=True)
    g_loss = jnp.mean(jax.nn.softplus(-fake_logits))
    d_loss = jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
    return g_loss, d_loss
grads_g = jax.grad(lambda gt: losses(gt, state["d_tv"])[0])(state["g_tv"])
grads_d = jax.grad(lambda dt: losses(state["g_tv"], dt)[1])(state["d_tv"])
grads_d_from_g_loss = jax.grad(lambda dt: losses(state["g_tv"], dt)[0])(state["d_tv"])

def agreement(after, before, grads):
    delta = np.concatenate([np.ravel(np.asarray(a) - np.asarray(b)) for a, b in zip(after, before)])
    grad = np.concatenate([np.ravel(np.asarray(x)) for x in grads])
    mask = np.abs(grad) > 1e-4 * np.abs(grad).max()
    return np.mean(np.sign(delta[mask]) == -np.sign(grad[mask]))

print(json.dumps({"g": agreement(new["g_tv"], state["g_tv"], grads_g),
                  "d": agreement(new["d_tv"], state["d_tv"], grads_d),
                  "d_wrong": agreement(new["d_tv"], state["d_tv"], grads_d_from_g_loss),
                  "g_moved": all(float(np.abs(np.asarray(a) - np.asarray(b)).max()) > 0 for a, b in zip(new["g_tv"], state["g_tv"])),
                  "d_moved": all(float(np.abs(np.asarray(a) - np.asarray(b)).max()) > 0 for a, b in zip(new["d_tv"], state["d_tv"]))}))
""".replace("import jax,", "import json, jax,")


UPCONV_CHECK = """
import jax, jax.numpy as jnp, keras, numpy as np
from facegan.config import ModelConfig
from facegan.training import layers
from facegan.training.models import build_generator

layers._jax_on_cpu = lambda: False  # the transposed form, as JAX runs it on a GPU
keras.utils.set_random_seed(0)
fused = build_generator(ModelConfig(resolution=64))
plain = build_generator(ModelConfig(resolution=64, fused_upconv=False))
for a, b in zip(plain.variables, fused.variables):
    a.assign(b)
z = jnp.asarray(np.random.default_rng(0).normal(size=(3, 100)).astype("float32"))

def forward(model):
    ntv = [v.value for v in model.non_trainable_variables]
    def loss(tv):
        out, _ = model.stateless_call(tv, ntv, z, training=True)
        return jnp.mean(out ** 2), out
    return jax.value_and_grad(loss, has_aux=True)([v.value for v in model.trainable_variables])

(_, out_f), grads_f = forward(fused)
(_, out_p), grads_p = forward(plain)
assert float(jnp.abs(out_f - out_p).max()) < 2e-5
# BatchNorm over three images amplifies float32 rounding: up to 1.04e-3 relative was seen.
for gf, gp in zip(grads_f, grads_p):
    assert float(jnp.linalg.norm(gf - gp)) <= 5e-3 * float(jnp.linalg.norm(gp)) + 1e-7
print("same")
"""


def test_transposed_upconv_is_the_lecture_generator_on_jax():
    r = run_jax(UPCONV_CHECK)
    assert r.returncode == 0 and r.stdout.strip().endswith("same"), r.stderr[-2000:]


def test_jax_step_updates_each_network_from_its_own_loss():
    r = run_jax(SIGN_CHECK)
    assert r.returncode == 0, r.stderr[-3000:]
    result = json.loads(r.stdout.strip().splitlines()[-1])
    print(result)
    assert result["g"] > 0.99 and result["d"] > 0.99 and result["d_wrong"] < 0.7, result
    assert result["g_moved"] and result["d_moved"]


def train_code(call: str) -> str:
    """A training run in a fresh interpreter where importing TensorFlow fails, as on a JAX-only GPU box."""
    return (
        "import sys\n"
        "sys.modules['tensorflow'] = None\n"
        f"sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
        "from conftest import tiny_config\n"
        "from facegan.training.run import train\n"
        f"{call}\n"
    )


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_jax_training_run_resume_and_export_without_tensorflow(tmp_path):
    run = tmp_path / "run"
    r = run_jax(train_code(f"train(tiny_config(2), run_dir={str(run)!r}, verbose=0)"))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "jax" in r.stdout
    r = run_jax(train_code(f"train(resume={str(run)!r}, epochs=3, verbose=0)"))
    assert r.returncode == 0, r.stderr[-3000:]
    records = _metrics(run)
    assert [m["epoch"] for m in records] == [1, 2, 3]
    assert all(np.isfinite(m["g_loss"]) and np.isfinite(m["d_loss"]) for m in records)
    assert records[-1]["swd"] > 0 and len(list((run / "previews").glob("epoch-*.png"))) == 3
    assert records[-1]["face_rate_real"] >= 0.8 and 0 <= records[-1]["face_rate"] <= 1  # OpenCV, no TensorFlow
    assert (run / "evolution.gif").is_file()
    r = run_cli("export", "--run", run, "--base-path", tmp_path / "models")  # a JAX checkpoint, exported by TensorFlow
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "models" / "facegan" / "1" / "saved_model.pb").is_file()


def test_jax_data_parallel_on_two_cpu_devices(tmp_path):
    run = tmp_path / "run"
    r = run_jax(
        train_code(f"train(tiny_config(1, strategy='data-parallel'), run_dir={str(run)!r}, verbose=0)"),
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "2 replica(s)" in r.stdout
    record = _metrics(run)[0]
    assert np.isfinite(record["g_loss"]) and np.isfinite(record["d_loss"])


LOSSES_ON_JAX = (
    JAX_LOAD_NETWORKS
    + """
gan = FaceGAN(g, d, label_smoothing=0.1)
values = lambda vs: [v.value for v in vs]
forward = jax_step.make_forward(gan)
(g_loss, d_loss), _ = forward(values(g.trainable_variables), values(d.trainable_variables),
                              values(g.non_trainable_variables), values(d.non_trainable_variables),
                              jnp.asarray(saved["real"]), jnp.asarray(saved["z"]), None, 0.0)
print(json.dumps({"g_loss": float(g_loss), "d_loss": float(d_loss)}))
"""
)


def test_both_backends_compute_the_same_losses(tmp_path):
    """The losses are written once (training/losses.py): the TensorFlow step's forward half and the
    JAX step's give the same g_loss and d_loss on the same weights, batch and z (dropout off, since
    the two backends draw different dropout masks)."""
    import keras

    from facegan.config import ModelConfig
    from facegan.training.gan import FaceGAN
    from facegan.training.models import build_discriminator, build_generator

    cfg = ModelConfig(resolution=32, dropout=0.0)
    keras.utils.set_random_seed(4)
    g, d = build_generator(cfg), build_discriminator(cfg)
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
    z = rng.standard_normal((8, 100)).astype(np.float32)
    save_networks(tmp_path / "weights.npz", g, d, real=real, z=z)
    out = FaceGAN(g, d, label_smoothing=0.1).compute_losses(real, z)
    g_loss, d_loss = out["g_loss"], out["d_loss"]

    res = run_jax(LOSSES_ON_JAX, str(tmp_path / "weights.npz"))
    assert res.returncode == 0, res.stderr[-3000:]
    on_jax = json.loads(res.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(on_jax["g_loss"], float(g_loss), rtol=1e-4)
    np.testing.assert_allclose(on_jax["d_loss"], float(d_loss), rtol=1e-4)
    assert abs(float(g_loss) - float(d_loss)) > 1e-3  # the two losses are different numbers, so a swap would fail
