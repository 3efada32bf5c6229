"""Latent distributions: where z comes from, in training, sampling and evaluation alike.

gaussian: z ~ N(0, I) (ganhacks #3, "sample from a gaussian, not a uniform").
uniform:  z ~ U[-1, 1], the choice of the classic MNIST DCGAN tutorial.
Both have mean 0, so truncation (z * psi) pulls toward the mean for either.
"""

from __future__ import annotations

import torch


def draw_latents(dist: str, num: int, z_dim: int, *, generator: torch.Generator, device: torch.device | None = None) -> torch.Tensor:
    """z [num, z_dim] from `dist`, on the generator's device unless `device` says otherwise."""
    device = device if device is not None else generator.device
    if dist == "gaussian":
        return torch.randn(num, z_dim, generator=generator, device=device)
    if dist == "uniform":
        return torch.rand(num, z_dim, generator=generator, device=device).mul_(2).sub_(1)
    raise AssertionError(f"unknown latent distribution {dist!r}")  # config choices keep users out of here
