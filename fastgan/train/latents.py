"""The latents of the training step: z and labels for this process's share of each global batch.

Every process draws the whole global batch from one generator, seeded alike everywhere, and
keeps its own slice: latents differ across processes, and a run gives the same z whatever the
process count (the cost is world x a few hundred random numbers). The G phase either draws
afresh or reuses the last D phase's latents (`tricks.g_latents = "reuse"`, as the classic MNIST
GAN tutorials do: they regenerate the D step's images for the G step).
"""

from __future__ import annotations

import torch
from torch import Tensor

from fastgan.latents import draw_latents


class LatentSampler:
    def __init__(
        self,
        *,
        dist: str,
        z_dim: int,
        num_classes: int,
        batch: int,
        rank: int,
        world: int,
        device: torch.device,
        seed: int,
        reuse: bool,
    ) -> None:
        self.dist, self.z_dim, self.num_classes = dist, z_dim, num_classes  # num_classes 1: unconditional
        self.batch, self.rank, self.world, self.device = batch, rank, world, device
        self.reuse = reuse
        self.generator = torch.Generator(device=device).manual_seed(seed)  # its state is saved in checkpoints
        self.no_labels = torch.zeros(batch, dtype=torch.long, device=device)
        self.last: tuple[Tensor, Tensor] | None = None  # the last D phase's z and labels

    def for_D(self) -> tuple[Tensor, Tensor]:
        """Fresh z [batch, z_dim] and labels [batch] (uniform over the classes)."""
        total, start = self.batch * self.world, self.batch * self.rank
        z = draw_latents(self.dist, total, self.z_dim, generator=self.generator)[start : start + self.batch]
        if self.num_classes == 1:  # a config constant: unconditional models need no random labels
            self.last = (z, self.no_labels)
        else:
            labels = torch.randint(0, self.num_classes, (total,), device=self.device, generator=self.generator)
            self.last = (z, labels[start : start + self.batch])
        return self.last

    def for_G(self) -> tuple[Tensor, Tensor]:
        if not self.reuse:
            return self.for_D()
        assert self.last is not None, "a G phase needs a D phase before it"
        return self.last
