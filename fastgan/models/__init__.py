"""The model registry: a name, a builder returning (G, D), and the resolutions it can make.

G(z [B, Z], labels [B]) -> images [B, C, R, R] in [-1, 1] (r3gan's G is linear at the output, as in
its paper; sampling clamps); D(images, labels) -> logits [B].
Unconditional models take the labels and ignore them, so the step has one code path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from fastgan.config import ModelConfig
from fastgan.errors import UsageError
from fastgan.models.blocks import HasBlocks, freeze_blocks
from fastgan.models.dcgan import build_dcgan
from fastgan.models.dcgan28 import build_dcgan28
from fastgan.models.mlp import build_mlp
from fastgan.models.r3gan import build_r3gan, check_r3gan
from fastgan.models.tutorial_dcgan import build_tutorial_dcgan

__all__ = ["MODELS", "HasBlocks", "build_models", "check_model", "freeze_blocks"]


@dataclass(frozen=True)
class ModelSpec:
    build: Callable[[ModelConfig], tuple[nn.Module, nn.Module]]
    resolutions: tuple[int, ...] | None  # None: any resolution
    summary: str
    check: Callable[[ModelConfig], str | None] = lambda cfg: None  # model-specific keys: why not, or None


MODELS: dict[str, ModelSpec] = {
    "mlp": ModelSpec(build_mlp, None, "the MLP GAN of the classic tutorials"),
    "dcgan28": ModelSpec(build_dcgan28, (28,), "the small DCGAN of the MNIST tutorials, 28x28"),
    "dcgan": ModelSpec(build_dcgan, (16, 32, 64, 128), "Radford et al.'s DCGAN, 32 or 64 px (width = model.dcgan.width)"),
    "tutorial-dcgan": ModelSpec(build_tutorial_dcgan, (28,), "the classic MNIST DCGAN tutorial's model, exactly (4x4 transposed convs)"),
    "r3gan": ModelSpec(build_r3gan, None, "R3GAN's normalisation-free residual nets (model.r3gan.stage_widths, stage_blocks)", check_r3gan),
}


def check_model(cfg: ModelConfig) -> None:
    """Raise a UsageError naming the option when `cfg` asks for something no model can make."""
    if cfg.name not in MODELS:
        raise UsageError(f"model.name = {cfg.name!r} is not known; choose one of: {', '.join(MODELS)}")
    sides = MODELS[cfg.name].resolutions
    if sides is not None and cfg.resolution not in sides:
        raise UsageError(f"model.resolution = {cfg.resolution}: model {cfg.name!r} makes {' or '.join(map(str, sides))} px images")
    if cfg.channels not in (1, 3):
        raise UsageError(f"model.channels = {cfg.channels}: use 1 (grey) or 3 (RGB)")
    why_not = MODELS[cfg.name].check(cfg)
    if why_not:
        raise UsageError(why_not)
    if cfg.conditional and cfg.num_classes < 2:
        raise UsageError(f"model.num_classes = {cfg.num_classes}: a conditional model needs at least 2 classes")


def build_models(cfg: ModelConfig) -> tuple[nn.Module, nn.Module]:
    check_model(cfg)
    return MODELS[cfg.name].build(cfg)
