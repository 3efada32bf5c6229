"""DiffAugment's three ops (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient
GAN Training", arXiv:2006.10738), written for fastgan: per-image random parameters drawn on
the images' device, a per-image `apply` mask (1.0 or 0.0) so that ADA's probability p can gate
each op image by image, and only differentiable tensor ops, so gradients reach G through them
and R1/R2 can differentiate through them twice.

Every op: (images [B, C, H, W] in [-1, 1], apply [B]) -> images of the same shape. Nothing reads
a device value on the host.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

Op = Callable[[Tensor, Tensor], Tensor]
TRANSLATION_RATIO = 1 / 8  # largest shift, as a fraction of the side (DiffAugment's 0.125)
CUTOUT_RATIO = 1 / 2  # side of the erased square, as a fraction of the image side


def per_image(apply: Tensor, values: Tensor) -> Tensor:
    """[B] values where applied, 0 elsewhere, shaped [B, 1, 1, 1] to broadcast over images."""
    return (values * apply).view(-1, 1, 1, 1)


def color(x: Tensor, apply: Tensor) -> Tensor:
    """Brightness (+U[-0.5, 0.5]), saturation (x U[0, 2] around the pixel's channel mean; a no-op
    for grey images) and contrast (x U[0.5, 1.5] around the image mean)."""
    b = x.shape[0]
    x = x + per_image(apply, torch.rand(b, device=x.device, dtype=x.dtype) - 0.5)
    if x.shape[1] > 1:  # a shape, fixed per model: saturation needs colour channels
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (1 + per_image(apply, torch.rand(b, device=x.device, dtype=x.dtype) * 2 - 1)) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (1 + per_image(apply, torch.rand(b, device=x.device, dtype=x.dtype) - 0.5)) + mean


def translation(x: Tensor, apply: Tensor, ratio: float = TRANSLATION_RATIO) -> Tensor:
    """Shift each image by up to ratio x side pixels in x and y, filling with zeros (mid-grey)."""
    b, c, h, w = x.shape
    s = int(h * ratio + 0.5)
    mask = apply.long().view(b, 1, 1)
    dy = torch.randint(-s, s + 1, (b, 1, 1), device=x.device) * mask
    dx = torch.randint(-s, s + 1, (b, 1, 1), device=x.device) * mask
    rows = torch.arange(h, device=x.device).view(1, h, 1) + dy + s  # [B, H, 1] in the padded image
    cols = torch.arange(w, device=x.device).view(1, 1, w) + dx + s  # [B, 1, W]
    padded = F.pad(x, [s, s, s, s])  # [B, C, H + 2s, W + 2s]
    index = (rows * (w + 2 * s) + cols).view(b, 1, h * w).expand(b, c, h * w)
    return padded.flatten(2).gather(2, index).view(b, c, h, w)  # gather: differentiable twice


def cutout(x: Tensor, apply: Tensor, ratio: float = CUTOUT_RATIO) -> Tensor:
    """Zero a square of ratio x side at a random place in each image (DeVries & Taylor 2017)."""
    b, _, h, w = x.shape
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - size_h % 2), (b, 1, 1), device=x.device) - size_h // 2
    left = torch.randint(0, w + (1 - size_w % 2), (b, 1, 1), device=x.device) - size_w // 2
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top) & (rows < top + size_h) & (cols >= left) & (cols < left + size_w)  # [B, H, W]
    keep = 1 - inside.to(x.dtype) * apply.view(b, 1, 1)
    return x * keep.unsqueeze(1)


OPS: dict[str, Op] = {"color": color, "translation": translation, "cutout": cutout}
