"""Radford et al. 2015 (arXiv:1511.06434) DCGAN at 2^k px: 32 or 64 in the paper's setups.

G: z -> ConvT 4x4 to (w*2^(n-1)) x 4x4, then n-1 ConvT 4x4/2 halving channels, then ConvT 4x4/2
   to C channels and tanh; BatchNorm + ReLU between. n = log2(resolution) - 2 blocks.
D: the mirror: Conv 4x4/2 + LeakyReLU(0.2) (no BN on the first), BatchNorm after, then the
   4x4 map is flattened into the logit head (equal to the paper's final 4x4 valid conv).
"""

from __future__ import annotations

import torch
from torch import nn

from fastgan.config import ModelConfig
from fastgan.models.blocks import body_blocks
from fastgan.models.conditioning import LatentInput, d_conditioning, dcgan_init


def num_blocks(resolution: int) -> int:
    return resolution.bit_length() - 3  # 32 -> 3, 64 -> 4


class DCGANGenerator(nn.Module):
    def __init__(self, *, z_dim: int, width: int, channels: int, resolution: int, num_classes: int, conditional: bool) -> None:
        super().__init__()
        self.latent = LatentInput(z_dim=z_dim, num_classes=num_classes, conditional=conditional)
        n = num_blocks(resolution)
        ch = width * 2 ** (n - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(self.latent.out_dim, ch, 4, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(True),  # 1 -> 4
        ]
        for _ in range(n - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = self.latent(z, labels)
        return self.net(x[:, :, None, None])  # [B, C, R, R]


class DCGANDiscriminator(nn.Module):
    def __init__(self, *, width: int, channels: int, resolution: int, num_classes: int, conditional: bool, mode: str) -> None:
        super().__init__()
        n = num_blocks(resolution)
        top = width * 2 ** (n - 1)
        self.planes, self.head = d_conditioning(conditional=conditional, mode=mode, num_classes=num_classes, in_features=top * 16)
        layers: list[nn.Module] = [nn.Conv2d(channels + self.planes.extra_channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = width
        for _ in range(n - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers.append(nn.Flatten())  # [B, top * 4 * 4]
        self.body = nn.Sequential(*layers)
        dcgan_init(self)

    def blocks(self) -> list[nn.Module]:
        """The layers of body with parameters, from the input on (FreezeD: fastgan.models.blocks)."""
        return body_blocks(self.body)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.planes(images, labels)), labels)  # [B] logits


def build_dcgan(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    kw = dict(
        width=cfg.dcgan.width, channels=cfg.channels, resolution=cfg.resolution, num_classes=cfg.num_classes, conditional=cfg.conditional
    )
    G = DCGANGenerator(z_dim=cfg.z_dim, **kw)  # type: ignore[arg-type]
    D = DCGANDiscriminator(mode=cfg.d_conditioning, **kw)  # type: ignore[arg-type]
    return G, D
