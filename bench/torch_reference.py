"""The lecture's DCGAN and two-loss step written the idiomatic PyTorch way: the reference that
bench/gpu_train.py times facegan against (issue: GPU training).

Same network as facegan.training.models with the lecture's layers (nearest upsampling + 3x3
convolution, BatchNorm momentum 0.8 as PyTorch's 0.2, epsilon 1e-3, LeakyReLU 0.2, dropout
0.25, a logit out of D), channels_last, bfloat16 autocast, torch.compile on both networks and
fused Adam on CUDA. The step keeps the lecture's semantics: one forward pass scores real and
fake; g_loss's gradient goes to G only and d_loss's to D only, both taken before either update.
PyTorch pads a stride-2 'same' convolution symmetrically where Keras pads after, so outputs
sit half a pixel apart; shapes, parameters and FLOPs are the same.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _up_block(cin: int, cout: int, scale: int) -> list[nn.Module]:
    return [
        nn.Upsample(scale_factor=scale, mode="nearest"),
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.BatchNorm2d(cout, eps=1e-3, momentum=0.2),
        nn.ReLU(inplace=True),
    ]


class Generator(nn.Module):
    def __init__(self, resolution: int = 64, latent_dim: int = 100, channels: int = 3):
        super().__init__()
        self.project = nn.Linear(latent_dim, 4 * 4 * 256)
        blocks = _up_block(256, 256, 2) + _up_block(256, 256, 2) + _up_block(256, 128, 2)
        if resolution > 32:
            blocks += _up_block(128, 128, resolution // 32)
        self.blocks = nn.Sequential(*blocks, nn.Conv2d(128, channels, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.project(z)).view(-1, 256, 4, 4).contiguous(memory_format=torch.channels_last)
        return self.blocks(x)


def _down_tail(c: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(c, eps=1e-3, momentum=0.2), nn.LeakyReLU(0.2, inplace=True), nn.Dropout(0.25)]


class Discriminator(nn.Module):
    def __init__(self, resolution: int = 64, channels: int = 3):
        super().__init__()
        side = ((resolution // 4) + 1 + 1) // 2  # /2, /2, pad +1, /2 (ceil)
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 3, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Dropout(0.25),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.ZeroPad2d((0, 1, 0, 1)),
            *_down_tail(64),
            nn.Conv2d(64, 128, 3, stride=2, padding=1),
            *_down_tail(128),
            nn.Conv2d(128, 256, 3, padding=1),
            *_down_tail(256),
            nn.Conv2d(256, 512, 3, padding=1),
            *_down_tail(512),
            nn.Flatten(),
        )
        self.logit = nn.Linear(side * side * 512, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.logit(self.features(image)).float()


def lecture_losses(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(g_loss, d_loss): BCE from logits, G wants fakes called real, D wants real real and fakes fake."""
    bce = F.binary_cross_entropy_with_logits
    g_loss = bce(fake_logits, torch.ones_like(fake_logits))
    d_loss = bce(real_logits, torch.ones_like(real_logits)) + bce(fake_logits, torch.zeros_like(fake_logits))
    return g_loss, d_loss


class TorchGAN:
    """G, D, both Adams and the lecture's step; `step(real)` returns (g_loss, d_loss) tensors."""

    def __init__(
        self,
        resolution: int = 64,
        latent_dim: int = 100,
        device: str = "cpu",
        mixed: bool = False,
        compile: bool = True,
        lr: float = 1.5e-4,
        beta_1: float = 0.5,
    ):
        self.device = torch.device(device)
        self.latent_dim = latent_dim
        self.generator = Generator(resolution, latent_dim).to(self.device, memory_format=torch.channels_last)
        self.discriminator = Discriminator(resolution).to(self.device, memory_format=torch.channels_last)
        fused = self.device.type == "cuda"
        self.g_opt = torch.optim.Adam(self.generator.parameters(), lr, betas=(beta_1, 0.999), fused=fused)
        self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr, betas=(beta_1, 0.999), fused=fused)
        # dynamic=False: every batch size gets its own static-shape kernels, as facegan's jit does.
        self.g = torch.compile(self.generator, dynamic=False) if compile else self.generator
        self.d = torch.compile(self.discriminator, dynamic=False) if compile else self.discriminator
        self.autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=mixed)

    def step(self, real: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = torch.randn(real.shape[0], self.latent_dim, device=self.device)
        with self.autocast:
            fake = self.g(z)
            real_logits, fake_logits = self.d(real), self.d(fake)
        g_loss, d_loss = lecture_losses(real_logits, fake_logits)
        g_params, d_params = list(self.generator.parameters()), list(self.discriminator.parameters())
        # Two separate gradients, as the lecture's two tapes: each loss reaches only its own network.
        g_grads = torch.autograd.grad(g_loss, g_params, retain_graph=True)
        d_grads = torch.autograd.grad(d_loss, d_params)
        for params, grads in ((g_params, g_grads), (d_params, d_grads)):
            for p, grad in zip(params, grads):
                p.grad = grad
        self.g_opt.step()
        self.d_opt.step()
        return g_loss.detach(), d_loss.detach()
