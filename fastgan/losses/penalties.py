"""Gradient penalties on D: each maps the D phase's tensors to a scalar added to D's loss.

All need double backward, which torch.compile does not support (pytorch/pytorch#91469): the
regularisation plan (fastgan.losses.plan) refuses them in a compiled D phase, and lazy R1/R2
(fastgan.train.lazy_reg) run them through the eager D. `input_grad` is the D network's
scaled-and-unscaled gradient (fastgan.train.nets.Net.input_grad), so the penalties do not
underflow under fp16. `real` and `gen` are D's inputs before augmentation; `D` augments, so the
penalties see what D sees and differentiate through the augmentation (as StyleGAN2-ADA does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True, kw_only=True)
class PenaltyInputs:
    D: Callable[..., Tensor]  # the D the step calls, augmentation included
    real: Tensor  # real images in [-1, 1], requires_grad when R1 is on
    real_logits: Tensor
    gen: Tensor  # generated images (detached from G), requires_grad when R2 is on
    gen_logits: Tensor
    real_labels: Tensor
    gen_labels: Tensor
    input_grad: Callable[[Tensor, Tensor], Tensor]  # (output sum, inputs) -> d sum / d inputs, differentiable


Penalty = Callable[[PenaltyInputs], Tensor]


@dataclass
class ZeroCentredPenalty:
    """gamma/2 * E[||grad_x D(x)||^2] on one side's images: R1 on real ones (Mescheder et al. 2018,
    arXiv:1801.04406), R2 on generated ones, R1's twin, which R3GAN adds so that both sides of the
    game are regularised (Huang et al. 2024, arXiv:2501.05441).

    `gamma` is a host float that a schedule may set between steps (fastgan.train.schedule): these
    penalties always run eagerly (double backward), so a new value needs no recompile."""

    gamma: float
    side: str  # "real" (R1) or "gen" (R2)

    def __call__(self, x: PenaltyInputs) -> Tensor:
        logits, images = (x.real_logits, x.real) if self.side == "real" else (x.gen_logits, x.gen)
        grad = x.input_grad(logits.float().sum(), images)
        return 0.5 * self.gamma * grad.float().square().flatten(1).sum(1).mean()


def r1_penalty(gamma: float) -> Penalty:
    """R1: the zero-centred penalty on real images."""
    return ZeroCentredPenalty(gamma, "real")


def r2_penalty(gamma: float) -> Penalty:
    """R2: the zero-centred penalty on generated images."""
    return ZeroCentredPenalty(gamma, "gen")


def gradient_penalty(weight: float) -> Penalty:
    """weight * E[(||grad D(x_hat)|| - 1)^2] on real/generated mixes (Gulrajani et al. 2017, arXiv:1704.00028)."""

    def penalty(x: PenaltyInputs) -> Tensor:
        alpha = torch.rand(x.real.shape[0], 1, 1, 1, device=x.real.device, dtype=x.real.dtype)
        mix = (alpha * x.real.detach() + (1 - alpha) * x.gen.detach()).requires_grad_(True)
        grad = x.input_grad(x.D(mix, x.real_labels).float().sum(), mix)
        return weight * (grad.float().flatten(1).norm(dim=1) - 1).square().mean()

    return penalty


def zero_centred_penalties(r1_gamma: float, r2_gamma: float) -> list[Penalty]:
    """R1 and/or R2, as a config asks (in every D step or lazily: fastgan.losses.plan)."""
    return [make(gamma) for make, gamma in ((r1_penalty, r1_gamma), (r2_penalty, r2_gamma)) if gamma > 0]
