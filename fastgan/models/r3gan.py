"""R3GAN's normalisation-free residual G and D (Huang et al., NeurIPS 2024, "The GAN is dead;
long live the GAN!", arXiv:2501.05441), in plain PyTorch: no custom CUDA ops, bf16-friendly.

Each stage works at one resolution; stage 0 is the basis (4x4 .. 8x8), each later one doubles
the side: 28 px = 7 -> 14 -> 28 (3 stages), 32 px = 4 -> 8 -> 16 -> 32, 64 px = 4 -> ... -> 64.
- Block: 1x1 conv (w -> e*w) -> biased LeakyReLU(0.2) -> grouped 3x3 conv (groups of
  `group_channels`) -> biased LeakyReLU -> 1x1 conv (e*w -> w, zero-initialised), plus the
  input. With the last layer at zero every block starts as the identity.
- Initialisation (the paper's fix-up style): weights N(0, gain / sqrt(fan_in)), the two inner
  layers' gain scaled by L^(-1/4) for L blocks in the network, so depth does not blow up the
  variance of the residual sum.
- Resampling with the [1,2,1] filter: up = [1,3,3,1] x2 interpolation (bilinear, what
  [1,2,1] convolved with the box [1,1] gives), down = the same filter then stride 2.
  No transposed convolutions, so no checkerboard.
- No normalisation layers anywhere: G_ema needs no BatchNorm recalibration and DDP has no
  buffers to broadcast.
G: z (+ class embedding) -> linear -> scales a learned basis [w0, b, b] -> stages -> 1x1 conv to C
(no tanh, as in the paper: the range is learned; sampling clamps to [-1, 1]).
D: the mirror: 1x1 conv from C (+ label planes) -> stages (blocks, then down) -> depthwise
b x b conv to [B, w0] -> logit head (projection conditioning when asked for).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fastgan.config import ModelConfig
from fastgan.models.blocks import body_blocks
from fastgan.models.conditioning import LatentInput, d_conditioning

LEAK = 0.2
ACT_GAIN = math.sqrt(2 / (1 + LEAK**2))  # He gain for LeakyReLU(0.2)
FILTER = (1.0, 3.0, 3.0, 1.0)  # [1,2,1] convolved with [1,1]: the 2x resampling filter


def msr_init(layer: nn.Conv2d | nn.Linear, gain: float) -> nn.Module:
    """weights ~ N(0, gain / sqrt(fan_in)), bias 0 (He et al. 2015 scaling); gain 0 zeroes them."""
    if gain > 0:
        nn.init.normal_(layer.weight, 0.0, gain / math.sqrt(layer.weight[0].numel()))
    else:
        nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def conv(c_in: int, c_out: int, k: int, gain: float, groups: int = 1, bias: bool = False) -> nn.Module:
    """A conv with MSR init. `bias=True` is the paper's biased activation (a learned per-channel
    bias before the LeakyReLU), folded into the conv: the same maths, without a separate add."""
    return msr_init(nn.Conv2d(c_in, c_out, k, padding=(k - 1) // 2, groups=groups, bias=bias), gain)


class ResidualBlock(nn.Module):
    def __init__(self, width: int, *, expansion: int, group_channels: int, num_blocks: int) -> None:
        super().__init__()
        inner = width * expansion
        gain = ACT_GAIN * num_blocks ** (-1 / 4)  # L^(-1/(2m-2)) with m = 3 layers per block
        self.body = nn.Sequential(
            conv(width, inner, 1, gain, bias=True),
            nn.LeakyReLU(LEAK),
            conv(inner, inner, 3, gain, groups=max(1, inner // group_channels), bias=True),
            nn.LeakyReLU(LEAK),
            conv(inner, width, 1, 0.0),  # zero: the block starts as the identity
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def lowpass(channels: int) -> torch.Tensor:
    """The separable [1,3,3,1] filter, normalised, one copy per channel: [C, 1, 4, 4]."""
    f = torch.tensor(FILTER)
    k = torch.outer(f, f)
    return (k / k.sum()).expand(channels, 1, 4, 4).contiguous()


class Upsample(nn.Module):
    """1x1 conv to the new width (if it changes), then 2x [1,3,3,1] interpolation."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.proj = conv(c_in, c_out, 1, 1.0) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.proj(x), scale_factor=2, mode="bilinear", align_corners=False)


class Downsample(nn.Module):
    """[1,3,3,1] low-pass with stride 2 (a depthwise conv: double backward works, for R1/R2),
    then a 1x1 conv to the new width (if it changes). The low-pass runs in fp32: it is a fixed
    filter of a few FLOPs, and oneDNN's bf16 depthwise backward is ~10x slower than its fp32 one
    on CPUs (measured on a 2-core Xeon with AMX, torch 2.14)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.kernel: torch.Tensor
        self.register_buffer("kernel", lowpass(c_in), persistent=False)
        self.proj = conv(c_in, c_out, 1, 1.0) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            low = F.conv2d(x.float(), self.kernel, stride=2, padding=1, groups=x.shape[1])
        return self.proj(low.to(x.dtype))


def blocks(width: int, count: int, cfg: ModelConfig, total: int) -> list[nn.Module]:
    r = cfg.r3gan
    return [ResidualBlock(width, expansion=r.expansion, group_channels=r.group_channels, num_blocks=total) for _ in range(count)]


def basis_side(cfg: ModelConfig) -> int:
    return cfg.resolution >> (len(cfg.r3gan.stage_widths) - 1)


class R3GANGenerator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        widths, counts, total = cfg.r3gan.stage_widths, cfg.r3gan.stage_blocks, sum(cfg.r3gan.stage_blocks)
        self.side = basis_side(cfg)
        self.latent = LatentInput(z_dim=cfg.z_dim, num_classes=cfg.num_classes, conditional=cfg.conditional)
        self.basis = nn.Parameter(torch.randn(widths[0], self.side, self.side))
        self.to_basis = msr_init(nn.Linear(self.latent.out_dim, widths[0], bias=False), 1.0)
        layers: list[nn.Module] = blocks(widths[0], counts[0], cfg, total)
        for i in range(1, len(widths)):
            layers += [Upsample(widths[i - 1], widths[i]), *blocks(widths[i], counts[i], cfg, total)]
        self.stages = nn.Sequential(*layers)
        self.to_image = conv(widths[-1], cfg.channels, 1, 1.0)

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        scale = self.to_basis(self.latent(z, labels))  # [B, w0]
        x = self.basis.to(scale.dtype)[None] * scale[:, :, None, None]  # [B, w0, b, b]
        return self.to_image(self.stages(x))  # [B, C, R, R]


class R3GANDiscriminator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        widths, counts, total = cfg.r3gan.stage_widths[::-1], cfg.r3gan.stage_blocks[::-1], sum(cfg.r3gan.stage_blocks)
        side = basis_side(cfg)
        self.planes, self.head = d_conditioning(
            conditional=cfg.conditional, mode=cfg.d_conditioning, num_classes=cfg.num_classes, in_features=widths[-1]
        )
        layers: list[nn.Module] = [conv(cfg.channels + self.planes.extra_channels, widths[0], 1, 1.0)]
        for i in range(len(widths) - 1):
            layers += [*blocks(widths[i], counts[i], cfg, total), Downsample(widths[i], widths[i + 1])]
        layers += blocks(widths[-1], counts[-1], cfg, total)
        # the basis' mirror: a depthwise b x b conv over the whole b x b map -> [B, w0, 1, 1]
        layers += [msr_init(nn.Conv2d(widths[-1], widths[-1], side, groups=widths[-1], bias=False), 1.0), nn.Flatten()]
        self.body = nn.Sequential(*layers)

    def blocks(self) -> list[nn.Module]:
        """The layers of body with parameters, from the input on (FreezeD: fastgan.models.blocks)."""
        return body_blocks(self.body)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.planes(images, labels)), labels)  # [B] logits


def check_r3gan(cfg: ModelConfig) -> str | None:
    """Why `cfg` cannot make an r3gan, or None."""
    r = cfg.r3gan
    n = len(r.stage_widths)
    if n < 2 or len(r.stage_blocks) != n:
        widths, counts = list(r.stage_widths), list(r.stage_blocks)
        return f"model.r3gan.stage_widths and model.r3gan.stage_blocks need one entry per stage (at least 2), got {widths} and {counts}"
    side = cfg.resolution / 2 ** (n - 1)
    if side != int(side) or side < 4:
        return (
            f"model.resolution = {cfg.resolution} with {n} stages gives a {side:g} px basis; it must be a whole number >= 4 "
            "(e.g. 3 stages for 28 px, 4 for 32, 5 for 64)"
        )
    if any(w <= 0 for w in r.stage_widths) or any(b < 0 for b in r.stage_blocks) or sum(r.stage_blocks) == 0:
        return "model.r3gan.stage_widths must be positive and model.r3gan.stage_blocks non-negative with at least one block"
    if r.expansion < 1 or r.group_channels < 1 or any(w * r.expansion % r.group_channels for w in r.stage_widths):
        return (
            f"model.r3gan.stage_widths x model.r3gan.expansion ({r.expansion}) must divide into groups of "
            f"model.r3gan.group_channels ({r.group_channels}), got widths {list(r.stage_widths)}"
        )
    return None


def build_r3gan(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    return R3GANGenerator(cfg), R3GANDiscriminator(cfg)
