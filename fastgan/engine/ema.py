"""Exponential moving average of G's weights, with a half-life counted in images.

beta = 0.5 ** (batch / half_life), so G_ema means the same at any batch size or process count
(Karras et al., StyleGAN2-ADA's ema_kimg). Early in training the half-life is capped at
`rampup` x images seen, so G_ema is not stuck near the random initial G. G_ema is not wrapped
by DDP; every process applies the same update to identical weights, so it stays identical.
"""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    def __init__(self, *, half_life_images: int, global_batch: int, rampup: float) -> None:
        self.half_life = half_life_images
        self.batch = global_batch
        self.rampup = rampup

    def beta(self, cur_nimg: int) -> float:
        """Decay for one step at `cur_nimg` images seen (host arithmetic, no sync)."""
        half_life = float(self.half_life)
        if self.rampup > 0:
            half_life = min(half_life, cur_nimg * self.rampup)
        return 0.5 ** (self.batch / half_life) if half_life > 0 else 0.0

    @torch.no_grad()
    def update(self, G_ema: nn.Module, G: nn.Module, step_ok: torch.Tensor, cur_nimg: int) -> None:
        """Move G_ema towards G; `step_ok` (bool tensor, on device) is False when G's step was
        skipped for inf/NaN gradients, and then G_ema is left as it is: no host sync."""
        weight = (1.0 - self.beta(cur_nimg)) * step_ok.float()  # 0-dim, on device
        for p_ema, p in zip(G_ema.parameters(), G.parameters(), strict=True):
            p_ema.lerp_(p.detach(), weight.to(p_ema.dtype))
        for b_ema, b in zip(G_ema.buffers(), G.buffers(), strict=True):
            b_ema.copy_(b)  # BatchNorm statistics are copied, as StyleGAN2-ADA does
