"""The loss registry: a name, D's and G's loss functions (fastgan.losses.gan), what the loss
reads, and the penalty it brings with it, if any (fastgan.losses.penalties).

A new loss is its functions plus one entry here; a loss with a penalty of its own names it in
`penalty`, and the regularisation plan (fastgan.losses.plan) adds it to every D step's loss and
refuses compile for it (its double backward).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from fastgan.config import LossConfig
from fastgan.errors import UsageError
from fastgan.losses.gan import (
    bce_d_loss,
    hinge_d_loss,
    hinge_g_loss,
    lsgan_d_loss,
    lsgan_g_loss,
    minimax_g_loss,
    nonsaturating_g_loss,
    relativistic_d_loss,
    relativistic_g_loss,
    wasserstein_d_loss,
)
from fastgan.losses.penalties import Penalty, gradient_penalty


@dataclass(frozen=True)
class GANLoss:
    d_loss: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor, Tensor], Tensor]  # (gen_logits, real_logits)
    uses_targets: bool  # label smoothing and flips change this loss
    g_uses_real: bool = False  # the G loss reads D's logits on real images (relativistic)
    penalty: Callable[[LossConfig], Penalty] | None = None  # this loss's own penalty, in every D step


LOSSES: dict[str, GANLoss] = {
    "minimax": GANLoss(bce_d_loss, minimax_g_loss, uses_targets=True),
    "nonsaturating": GANLoss(bce_d_loss, nonsaturating_g_loss, uses_targets=True),
    "hinge": GANLoss(hinge_d_loss, hinge_g_loss, uses_targets=False),
    "lsgan": GANLoss(lsgan_d_loss, lsgan_g_loss, uses_targets=True),
    "wgan-gp": GANLoss(wasserstein_d_loss, hinge_g_loss, uses_targets=False, penalty=lambda lc: gradient_penalty(lc.gp_weight)),
    "rpgan": GANLoss(relativistic_d_loss, relativistic_g_loss, uses_targets=False, g_uses_real=True),
}


def get_loss(name: str) -> GANLoss:
    if name not in LOSSES:
        raise UsageError(f"loss.name = {name!r} is not known; choose one of: {', '.join(LOSSES)}")
    return LOSSES[name]
