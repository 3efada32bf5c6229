"""Exponential moving average of G's weights, with a half-life counted in images, and
BatchNorm statistics of G_ema's own.

beta = 0.5 ** (images per G step / half_life), so G_ema means the same at any batch size,
`d_steps` or process count (Karras et al., StyleGAN2-ADA's ema_kimg). Early in training the
half-life is capped at `rampup` x images seen, so G_ema is not stuck near the random initial G.

G_ema's parameters are views into one flat buffer, so an update is three kernels whatever the
model (cat, lerp, where) instead of one per tensor. The buffer holds each tensor in its memory
order, so G's weights are read as views in any layout: with `train.channels_last` a flattening
in logical order would copy every conv weight (a kernel each) before the cat. A skipped G step
leaves G_ema exactly as it was: `where` selects the old values, while `lerp_` with weight 0 would still write NaN when
G holds NaN (0 * NaN = NaN). G_ema is not wrapped by DDP; every process applies the same
update to identical weights, so it stays identical.
"""

from __future__ import annotations

import torch
from torch import nn

from fastgan.latents import draw_latents

BN_RECALIBRATION_IMAGES = 2048  # latents per recalibration of G_ema's BatchNorm statistics


class EMA:
    def __init__(self, G_ema: nn.Module, *, half_life_images: int, images_per_step: int, rampup: float) -> None:
        self.G_ema = G_ema  # not wrapped by DDP, never compiled: what checkpoints and samples use
        self.half_life = half_life_images
        self.images_per_step = images_per_step  # global batch x tricks.d_steps: real images per G step
        self.rampup = rampup
        params = list(G_ema.parameters())
        self.orders = [memory_order(p) for p in params]  # G's parameters have the same layouts (G_ema is its copy)
        self.flat = torch.cat([in_memory_order(p, o) for p, o in zip(params, self.orders, strict=True)]) if params else torch.zeros(0)
        offset = 0
        for p, order in zip(params, self.orders, strict=True):  # each parameter a view into the buffer, in its own layout
            stored = self.flat[offset : offset + p.numel()].view([p.shape[d] for d in order])
            p.data = stored.permute([order.index(d) for d in range(p.dim())])
            offset += p.numel()

    def beta(self, cur_nimg: int) -> float:
        """Decay for one step at `cur_nimg` images seen (host arithmetic, no sync)."""
        half_life = float(self.half_life)
        if self.rampup > 0:
            half_life = min(half_life, cur_nimg * self.rampup)
        return 0.5 ** (self.images_per_step / half_life) if half_life > 0 else 0.0

    @torch.no_grad()
    def update(self, G: nn.Module, skipped: torch.Tensor, cur_nimg: int) -> None:
        """Move G_ema towards G; `skipped` (0-dim float, on device) is 1.0 when G's step was
        skipped, and then G_ema is left exactly as it is. No host sync."""
        target = torch.cat([in_memory_order(p, o) for p, o in zip(G.parameters(), self.orders, strict=True)])  # views, one cat
        moved = self.flat.lerp(target, 1.0 - self.beta(cur_nimg))
        torch.where(skipped.bool(), self.flat, moved, out=self.flat)


def memory_order(t: torch.Tensor) -> list[int]:
    """t's dims from the outermost in memory to the innermost ([0, 2, 3, 1] for channels_last)."""
    strides = t.stride()
    return sorted(range(t.dim()), key=lambda d: -strides[d])  # stable: ties (size-1 dims) keep their order


def in_memory_order(t: torch.Tensor, order: list[int]) -> torch.Tensor:
    """t flattened in `order`: a view when that is t's layout (permuted, a dense tensor is contiguous)."""
    return t.detach().permute(order).reshape(-1)


@torch.no_grad()
def recalibrate_batchnorm(
    G_ema: nn.Module, *, z_dim: int, latent: str, num_classes: int, seed: int, device: torch.device, batch: int = 256
) -> None:
    """Give G_ema BatchNorm statistics of its own weights before it samples, is evaluated or exported.

    G's running statistics belong to G's weights, not to the averaged ones. Train-mode passes
    over fresh latents with momentum=None (a plain average over the passes) replace them. The
    latents come from a generator of their own, seeded by the caller (from images seen), so
    the training RNG is untouched and resume stays bitwise. A no-op for models without BatchNorm.
    """
    norms = [m for m in G_ema.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = G_ema.training
    G_ema.train()
    gen = torch.Generator(device=device).manual_seed(seed)
    for _ in range(BN_RECALIBRATION_IMAGES // batch):
        z = draw_latents(latent, batch, z_dim, generator=gen)
        labels = torch.randint(0, num_classes, (batch,), device=device, generator=gen)
        G_ema(z, labels)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    G_ema.train(was_training)
