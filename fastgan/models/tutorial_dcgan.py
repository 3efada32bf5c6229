"""The model of the classic MNIST DCGAN tutorial (PyTorch, noise 96), layer for layer.

G: z (96-dim, uniform in [-1, 1] in the tutorial) -> FC 1024, ReLU, BatchNorm1d
   -> FC 7x7x128, ReLU, BatchNorm1d -> ConvT 128->64 4x4/2 pad 1, ReLU, BatchNorm2d
   -> ConvT 64->C 4x4/2 pad 1, tanh.  (ReLU before BatchNorm, as the tutorial orders them.)
D: Conv C->32 5x5 (no padding), LeakyReLU(0.01), MaxPool 2 -> Conv 32->64 5x5, LeakyReLU(0.01),
   MaxPool 2 -> FC 1024->1024, LeakyReLU(0.01) -> FC 1024->1 logit.
Sizes are fixed (model.dcgan.width is not used); PyTorch's default initialisation, as in the tutorial.
Conditioning, when asked for, uses the shared modules (fastgan.models.conditioning).
"""

from __future__ import annotations

import torch
from torch import nn

from fastgan.config import ModelConfig
from fastgan.models.blocks import body_blocks
from fastgan.models.conditioning import LatentInput, d_conditioning


class TutorialGenerator(nn.Module):
    def __init__(self, *, z_dim: int, channels: int, num_classes: int, conditional: bool) -> None:
        super().__init__()
        self.latent = LatentInput(z_dim=z_dim, num_classes=num_classes, conditional=conditional)
        self.fc = nn.Sequential(
            nn.Linear(self.latent.out_dim, 1024),
            nn.ReLU(True),
            nn.BatchNorm1d(1024),
            nn.Linear(1024, 7 * 7 * 128),
            nn.ReLU(True),
            nn.BatchNorm1d(7 * 7 * 128),
        )
        self.conv = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 4, 2, padding=1),  # 7 -> 14
            nn.ReLU(True),
            nn.BatchNorm2d(64),
            nn.ConvTranspose2d(64, channels, 4, 2, padding=1),  # 14 -> 28
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = self.fc(self.latent(z, labels)).view(-1, 128, 7, 7)
        return self.conv(h)  # [B, C, 28, 28]


class TutorialDiscriminator(nn.Module):
    def __init__(self, *, channels: int, num_classes: int, conditional: bool, mode: str) -> None:
        super().__init__()
        self.planes, self.head = d_conditioning(conditional=conditional, mode=mode, num_classes=num_classes, in_features=1024)
        self.body = nn.Sequential(
            nn.Conv2d(channels + self.planes.extra_channels, 32, 5, 1),  # 28 -> 24
            nn.LeakyReLU(0.01),
            nn.MaxPool2d(2, 2),  # 24 -> 12
            nn.Conv2d(32, 64, 5, 1),  # 12 -> 8
            nn.LeakyReLU(0.01),
            nn.MaxPool2d(2, 2),  # 8 -> 4
            nn.Flatten(),  # 64 x 4 x 4 = 1024
            nn.Linear(1024, 1024),
            nn.LeakyReLU(0.01),
        )

    def blocks(self) -> list[nn.Module]:
        """The layers of body with parameters, from the input on (FreezeD: fastgan.models.blocks)."""
        return body_blocks(self.body)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.planes(images, labels)), labels)  # [B] logits (FC 1024 -> 1 is head.linear)


def build_tutorial_dcgan(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    G = TutorialGenerator(z_dim=cfg.z_dim, channels=cfg.channels, num_classes=cfg.num_classes, conditional=cfg.conditional)
    D = TutorialDiscriminator(channels=cfg.channels, num_classes=cfg.num_classes, conditional=cfg.conditional, mode=cfg.d_conditioning)
    return G, D
