"""Class conditioning as small modules, so G and D stay one code path with or without labels.

G: the label's embedding is concatenated to z (Mirza & Osindero 2014, arXiv:1411.1784).
D: `projection` adds <embed(y), h> to the logit (Miyato & Koyama 2018, arXiv:1802.05637);
`concat` appends one-hot label planes to the input image (Mirza & Osindero).
Unconditional models use the pass-through variants and ignore the labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LatentInput(nn.Module):
    """z [B, Z] (+ labels [B]) -> G's input vector [B, Z + E]; E = 0 when unconditional."""

    def __init__(self, *, z_dim: int, num_classes: int, conditional: bool) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, z_dim) if conditional else None
        self.out_dim = z_dim * (2 if conditional else 1)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.embed is None:  # fixed at construction: not a data-dependent branch
            return z
        return torch.cat([z, self.embed(labels)], dim=1)


class LabelPlanes(nn.Module):
    """images [B, C, H, W] (+ labels) -> [B, C + K, H, W] with K one-hot planes (concat conditioning)."""

    def __init__(self, *, num_classes: int, enabled: bool) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.extra_channels = num_classes if enabled else 0

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.extra_channels == 0:
            return images
        b, _, h, w = images.shape
        planes = F.one_hot(labels, self.num_classes).to(images.dtype)[:, :, None, None].expand(b, -1, h, w)
        return torch.cat([images, planes], dim=1)


class LogitHead(nn.Module):
    """features [B, F] (+ labels) -> logits [B]; with projection, + <embed(y), h>."""

    def __init__(self, *, in_features: int, num_classes: int, projection: bool) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, 1)
        self.embed = nn.Embedding(num_classes, in_features) if projection else None

    def forward(self, h: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self.linear(h).squeeze(1)
        if self.embed is None:
            return logits
        return logits + (self.embed(labels) * h).sum(dim=1)


def d_conditioning(*, conditional: bool, mode: str, num_classes: int, in_features: int) -> tuple[LabelPlanes, LogitHead]:
    """The D input and head for a conditioning `mode` ("projection" or "concat")."""
    planes = LabelPlanes(num_classes=num_classes, enabled=conditional and mode == "concat")
    head = LogitHead(in_features=in_features, num_classes=num_classes, projection=conditional and mode == "projection")
    return planes, head


def dcgan_init(module: nn.Module) -> None:
    """Radford et al. 2015: weights from N(0, 0.02); BatchNorm scale from N(1, 0.02), bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
