"""The small DCGAN of the classic MNIST tutorials, for 28x28 images.

G: z -> FC 1024 -> FC 7x7x(2w) -> ConvT 5x5/2 -> w x 14x14 -> ConvT 5x5/2 -> C x 28x28, tanh;
   BatchNorm and ReLU between layers (w = model.dcgan.width, 64 in the tutorial: 7x7x128).
D: Conv 5x5 w -> pool -> Conv 5x5 2w -> pool -> FC 1024 -> 1 logit, LeakyReLU(0.2).
"""

from __future__ import annotations

import torch
from torch import nn

from fastgan.config import ModelConfig
from fastgan.models.blocks import body_blocks
from fastgan.models.conditioning import LatentInput, d_conditioning, dcgan_init


class DCGAN28Generator(nn.Module):
    def __init__(self, *, z_dim: int, width: int, channels: int, num_classes: int, conditional: bool) -> None:
        super().__init__()
        self.latent = LatentInput(z_dim=z_dim, num_classes=num_classes, conditional=conditional)
        self.width = width
        self.fc = nn.Sequential(
            nn.Linear(self.latent.out_dim, 1024, bias=False),
            nn.BatchNorm1d(1024),
            nn.ReLU(True),
            nn.Linear(1024, 2 * width * 7 * 7, bias=False),
            nn.BatchNorm1d(2 * width * 7 * 7),
            nn.ReLU(True),
        )
        self.conv = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 5, 2, padding=2, output_padding=1, bias=False),  # 7 -> 14
            nn.BatchNorm2d(width),
            nn.ReLU(True),
            nn.ConvTranspose2d(width, channels, 5, 2, padding=2, output_padding=1),  # 14 -> 28
            nn.Tanh(),
        )
        dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.fc(self.latent(z, labels)).view(-1, 2 * self.width, 7, 7)
        return self.conv(h)  # [B, C, 28, 28]


class DCGAN28Discriminator(nn.Module):
    def __init__(self, *, width: int, channels: int, num_classes: int, conditional: bool, mode: str) -> None:
        super().__init__()
        self.planes, self.head = d_conditioning(conditional=conditional, mode=mode, num_classes=num_classes, in_features=1024)
        self.body = nn.Sequential(
            nn.Conv2d(channels + self.planes.extra_channels, width, 5, padding=2),
            nn.LeakyReLU(0.2, True),
            nn.AvgPool2d(2),  # 28 -> 14
            nn.Conv2d(width, 2 * width, 5, padding=2),
            nn.LeakyReLU(0.2, True),
            nn.AvgPool2d(2),  # 14 -> 7
            nn.Flatten(),
            nn.Linear(2 * width * 7 * 7, 1024),
            nn.LeakyReLU(0.2, True),
        )
        dcgan_init(self)

    def blocks(self) -> list[nn.Module]:
        """The layers of body with parameters, from the input on (FreezeD: fastgan.models.blocks)."""
        return body_blocks(self.body)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.planes(images, labels)), labels)  # [B] logits


def build_dcgan28(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    G = DCGAN28Generator(
        z_dim=cfg.z_dim, width=cfg.dcgan.width, channels=cfg.channels, num_classes=cfg.num_classes, conditional=cfg.conditional
    )
    D = DCGAN28Discriminator(
        width=cfg.dcgan.width, channels=cfg.channels, num_classes=cfg.num_classes, conditional=cfg.conditional, mode=cfg.d_conditioning
    )
    return G, D
