"""bench/torch_reference.py, the PyTorch step facegan's GPU bench compares against: the same
network as facegan's, and the lecture's step (each loss moves only its own network)."""

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from facegan.config import ModelConfig
from facegan.training.models import build_discriminator, build_generator

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from torch_reference import TorchGAN, lecture_losses


def _count(variables) -> int:
    return sum(int(np.prod(v.shape)) for v in variables)


@pytest.mark.parametrize("res", [32, 64, 96])
def test_same_network_as_facegan(res):
    gan = TorchGAN(res, compile=False)
    cfg = ModelConfig(resolution=res)
    assert sum(p.numel() for p in gan.generator.parameters()) == _count(build_generator(cfg).trainable_variables)
    assert sum(p.numel() for p in gan.discriminator.parameters()) == _count(
        build_discriminator(cfg).trainable_variables
    )
    images = gan.generator(torch.randn(2, 100))
    assert images.shape == (2, 3, res, res) and images.abs().max() <= 1
    assert gan.discriminator(images).shape == (2, 1)


def test_step_moves_each_network_only_by_its_own_loss():
    gan = TorchGAN(32, compile=False)
    before = copy.deepcopy(gan)
    real = torch.rand(8, 3, 32, 32) * 2 - 1
    torch.manual_seed(7)
    g_loss, d_loss = gan.step(real)
    assert torch.isfinite(g_loss) and torch.isfinite(d_loss)

    # Replay the step's forward pass (same seed: same z and dropout masks) on the old weights.
    torch.manual_seed(7)
    z = torch.randn(8, 100)
    fake = before.generator(z)
    real_logits, fake_logits = before.discriminator(real), before.discriminator(fake)
    g_ref, d_ref = lecture_losses(real_logits, fake_logits)
    assert torch.allclose(g_ref, g_loss) and torch.allclose(d_ref, d_loss)
    g_params, d_params = list(before.generator.parameters()), list(before.discriminator.parameters())
    grads_g = torch.autograd.grad(g_ref, g_params, retain_graph=True)
    grads_d = torch.autograd.grad(d_ref, d_params, retain_graph=True)
    grads_d_from_g_loss = torch.autograd.grad(g_ref, d_params)

    def agreement(new, old, grads):
        # Adam's first step moves each weight by -lr * sign(grad): count the weights that agree.
        moved = [(n - o).detach().flatten() for n, o in zip(new, old)]
        signs = [-g.sign().flatten() for g in grads]
        hits = sum(((m.sign() == s) & (s != 0)).sum().item() for m, s in zip(moved, signs))
        return hits / sum(int((s != 0).sum()) for s in signs)

    g_new, d_new = list(gan.generator.parameters()), list(gan.discriminator.parameters())
    assert agreement(g_new, g_params, grads_g) > 0.99
    assert agreement(d_new, d_params, grads_d) > 0.99
    assert agreement(d_new, d_params, grads_d_from_g_loss) < 0.7


@pytest.mark.slow
def test_compiled_bfloat16_step_trains():
    """The configuration the GPU bench times: torch.compile, channels_last, bfloat16 autocast."""
    torch.manual_seed(0)
    gan = TorchGAN(32, mixed=True, compile=True)
    real = (torch.rand(4, 3, 32, 32) * 2 - 1).contiguous(memory_format=torch.channels_last)
    start = [p.detach().clone() for p in gan.generator.parameters()]
    for _ in range(3):
        g_loss, d_loss = gan.step(real)
        assert torch.isfinite(g_loss) and torch.isfinite(d_loss)
    assert all(not torch.equal(a, b) for a, b in zip(start, gan.generator.parameters()))
