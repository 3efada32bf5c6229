"""The MLP GAN of the classic MNIST tutorials (Goodfellow et al. 2014 in spirit).

G: z 100 -> 256 -> 512 -> 1024 -> C*H*W, LeakyReLU(0.2), tanh.
D: C*H*W -> 1024 -> 512 -> 256 -> 1 logit, LeakyReLU(0.2), dropout 0.3.
The tutorials end D with Sigmoid + BCELoss; here D returns the logit and the loss applies the
sigmoid (BCE-with-logits), the same maths but safe under autocast.
"""

from __future__ import annotations

import torch
from torch import nn

from fastgan.config import ModelConfig
from fastgan.models.blocks import body_blocks
from fastgan.models.conditioning import LatentInput, LogitHead


class MLPGenerator(nn.Module):
    def __init__(
        self, *, z_dim: int, hidden: tuple[int, ...], out_shape: tuple[int, int, int], num_classes: int, conditional: bool
    ) -> None:
        super().__init__()
        self.out_shape = out_shape
        self.latent = LatentInput(z_dim=z_dim, num_classes=num_classes, conditional=conditional)
        layers: list[nn.Module] = []
        width = self.latent.out_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
            width = h
        layers += [nn.Linear(width, out_shape[0] * out_shape[1] * out_shape[2]), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(self.latent(z, labels)).view(z.shape[0], *self.out_shape)  # [B, C, H, W]


class MLPDiscriminator(nn.Module):
    def __init__(
        self, *, in_shape: tuple[int, int, int], hidden: tuple[int, ...], dropout: float, num_classes: int, conditional: bool, mode: str
    ) -> None:
        super().__init__()
        c, h, w = in_shape
        # concat conditioning on an MLP: one-hot labels appended to the flattened image
        self.concat_classes = num_classes if conditional and mode == "concat" else 0
        layers: list[nn.Module] = []
        width = c * h * w + self.concat_classes
        for size in hidden:
            layers += [nn.Linear(width, size), nn.LeakyReLU(0.2), nn.Dropout(dropout)]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = LogitHead(in_features=width, num_classes=num_classes, projection=conditional and mode == "projection")

    def blocks(self) -> list[nn.Module]:
        """The layers of body with parameters, from the input on (FreezeD: fastgan.models.blocks)."""
        return body_blocks(self.body)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        x = images.flatten(1)
        if self.concat_classes:  # fixed at construction
            x = torch.cat([x, nn.functional.one_hot(labels, self.concat_classes).to(x.dtype)], dim=1)
        return self.head(self.body(x), labels)  # [B] logits


def build_mlp(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    shape = (cfg.channels, cfg.resolution, cfg.resolution)
    G = MLPGenerator(z_dim=cfg.z_dim, hidden=cfg.mlp.g_hidden, out_shape=shape, num_classes=cfg.num_classes, conditional=cfg.conditional)
    D = MLPDiscriminator(
        in_shape=shape,
        hidden=cfg.mlp.d_hidden,
        dropout=cfg.mlp.d_dropout,
        num_classes=cfg.num_classes,
        conditional=cfg.conditional,
        mode=cfg.d_conditioning,
    )
    return G, D
