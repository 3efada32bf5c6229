"""ganhacks stabilisers (soumith/ganhacks) that act on D's targets and inputs.

Each is a small object chosen at build time; with its switch off it is the identity, so the
step calls it unconditionally.
"""

from __future__ import annotations

import torch
from torch import Tensor


class Targets:
    """D's per-sample targets: one-sided label smoothing and random label flips (ganhacks #6).

    Smoothing (Salimans et al. 2016, arXiv:1606.03498) lowers only the real target to 1 - s.
    A flip swaps a sample's real and generated targets with probability `flip`; it is drawn on
    the device, so no host sync.
    """

    def __init__(self, *, smoothing: float, flip: float, device: torch.device) -> None:
        self.real_value = 1.0 - smoothing
        self.flip = flip
        self.device = device

        self.constant: dict[int, tuple[Tensor, Tensor]] = {}  # per batch size: made once, no launches per step

    def __call__(self, batch: int) -> tuple[Tensor, Tensor]:
        if batch not in self.constant:
            self.constant[batch] = (torch.full((batch,), self.real_value, device=self.device), torch.zeros(batch, device=self.device))
        real, gen = self.constant[batch]
        if self.flip > 0:  # a config constant, not a device value
            swap = torch.rand(batch, device=self.device) < self.flip
            real, gen = torch.where(swap, gen, real), torch.where(swap, real, gen)
        return real, gen


def instance_noise_std(start_std: float, decay_images: int, cur_nimg: int) -> float:
    """Std of gaussian noise added to D's inputs, decayed linearly to 0 over `decay_images`.

    Sønderby et al. 2016 (arXiv:1610.04490); computed on the host from images seen (no sync).
    """
    if start_std <= 0 or decay_images <= 0:
        return start_std if decay_images <= 0 else 0.0
    return start_std * max(0.0, 1.0 - cur_nimg / decay_images)


def add_instance_noise(images: Tensor, std: float) -> Tensor:
    return images + std * torch.randn_like(images) if std > 0 else images


class InstanceNoise:
    """Gaussian noise on every D input, its std decayed linearly to 0 over `decay_images`
    (`tricks.instance_noise`, `tricks.instance_noise_images`); the identity when off."""

    def __init__(self, *, std: float, decay_images: int) -> None:
        self.start_std, self.decay_images = std, decay_images

    def std_at(self, cur_nimg: int) -> float:
        return instance_noise_std(self.start_std, self.decay_images, cur_nimg)

    def __call__(self, images: Tensor, std: float) -> Tensor:
        return add_instance_noise(images, std)
