"""The regularisation plan: every decision about D's penalties, made once from `[loss]`.

Which penalties sit in every D step's loss and which run lazily, how often, how Adam's lr and
betas are adjusted for it, which input gradients the D phase must keep, and whether the D phase
may be compiled. The trainer (fastgan.train.build), the config checks (fastgan.validate) and
resume (fastgan.run.resume) all read this one plan.

Lazy regularisation (StyleGAN2, Karras et al. 2020, arXiv:1912.04958, appendix B): R1/R2 as a
D step of their own every `every` D steps, the penalty multiplied by `every`, and Adam's lr and
betas adjusted by c = every / (every + 1), so that the extra step does not change D's effective
step size and momentum horizon.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastgan.config import LossConfig
from fastgan.losses import get_loss
from fastgan.losses.penalties import Penalty, zero_centred_penalties


@dataclass(frozen=True)
class RegularisationPlan:
    in_step: tuple[Penalty, ...]  # added to every D step's loss (double backward in the D phase)
    lazy: tuple[Penalty, ...]  # R1/R2 as their own eager D step, every `every` D steps
    every: int  # loss.reg_every when R1/R2 run lazily, else 1
    needs_real_grad: bool  # an in-step R1 differentiates D(real) with respect to the real images
    needs_gen_grad: bool  # an in-step R2: the same for the generated images

    @property
    def compile_ok(self) -> bool:
        """torch.compile cannot differentiate twice (pytorch/pytorch#91469): only a D phase
        without in-step penalties may be compiled (lazy ones run through the eager D)."""
        return not self.in_step

    def adam(self, net: str, opt_cfg: Any) -> tuple[float, tuple[float, float]]:
        """The lr and betas network `net` ("G" or "D") runs Adam with: the config's, adjusted for D
        when it is regularised lazily."""
        return self.adjust(net, opt_cfg.lr, (float(opt_cfg.betas[0]), float(opt_cfg.betas[1])))

    def adjust(self, net: str, lr: float, betas: tuple[float, float]) -> tuple[float, tuple[float, float]]:
        """`lr` and `betas` (configured or scheduled: fastgan.train.schedule) as network `net` runs
        Adam with them: adjusted for D when it is regularised lazily."""
        if net == "D" and self.every > 1:
            return adam_for_lazy(lr, betas, self.every)
        return lr, betas


def regularisation_plan(lc: LossConfig) -> RegularisationPlan:
    zero_centred = zero_centred_penalties(lc.r1_gamma, lc.r2_gamma)
    lazy = lc.reg_every > 1 and bool(zero_centred)
    own = get_loss(lc.name).penalty
    in_step = ([] if lazy else zero_centred) + ([own(lc)] if own is not None else [])
    return RegularisationPlan(
        in_step=tuple(in_step),
        lazy=tuple(zero_centred) if lazy else (),
        every=lc.reg_every if lazy else 1,
        needs_real_grad=lc.r1_gamma > 0 and not lazy,
        needs_gen_grad=lc.r2_gamma > 0 and not lazy,
    )


def adam_for_lazy(lr: float, betas: tuple[float, float], every: int) -> tuple[float, tuple[float, float]]:
    """Adam's lr and betas for a network regularised every `every` steps: lr * c and beta ** c,
    c = every / (every + 1) (StyleGAN2's mb_ratio)."""
    c = every / (every + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)
