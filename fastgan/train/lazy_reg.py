"""Lazy regularisation: R1/R2 as a D step of their own every `every` D steps (StyleGAN2,
Karras et al. 2020, arXiv:1912.04958, appendix B; the plan, with Adam's adjustment, is
fastgan.losses.plan).

The penalty is multiplied by `every`, so on average D gets the same regularisation as in every
step. The pass runs through the *eager* D (double backward is not supported by torch.compile,
pytorch/pytorch#91469), so the main D phase can stay compiled. Which D steps regularise is
decided from images seen, on the host: a resumed run regularises on the same steps.

With gradient accumulation (`train.accumulate = k`) the pass runs on the D phase's k
micro-batches with one optimizer step: R1 and R2 are means over images of per-image gradient
norms, so the mean of the micro-batches' penalties is the whole batch's (k = 2 equals k = 1).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.profiler import record_function

from fastgan.losses.penalties import Penalty, PenaltyInputs
from fastgan.stats import DeviceStats
from fastgan.train.nets import Net, micro_batches


@dataclass(frozen=True)
class RegBatch:
    """What a D phase hands to the regulariser: D's inputs before augmentation (real in [-1, 1],
    generated detached from G) and their labels."""

    real: Tensor
    real_labels: Tensor
    gen: Tensor
    gen_labels: Tensor


def no_regularizer(cur_nimg: int, batch: RegBatch) -> None:
    """No lazy penalties configured (or they run in every D step's loss)."""


class LazyRegularizer:
    def __init__(
        self,
        penalties: tuple[Penalty, ...],
        *,
        every: int,
        images_per_step: int,
        D: Net,
        autocast: Callable[[], AbstractContextManager[Any]],
        augment: Callable[[Tensor], Tensor],
        stats: DeviceStats,
        accumulate: int = 1,
    ) -> None:
        assert penalties and every > 1
        self.penalties, self.every, self.images_per_step, self.accumulate = penalties, every, images_per_step, accumulate
        self.D, self.autocast, self.augment, self.stats = D, autocast, augment, stats

    def due(self, cur_nimg: int) -> bool:
        """True after every `every`-th D step, counted from images seen (host arithmetic)."""
        return (cur_nimg // self.images_per_step) % self.every == 0

    def __call__(self, cur_nimg: int, batch: RegBatch) -> None:
        if not self.due(cur_nimg):
            return
        real = batch.real.detach().requires_grad_(True)
        gen = batch.gen.detach().requires_grad_(True)

        eager = self.D.eager
        assert eager is not None  # Net fills it in

        def D(images: Tensor, labels: Tensor) -> Tensor:
            return eager(self.augment(images), labels)

        def reg_loss(real: Tensor, real_labels: Tensor, gen: Tensor, gen_labels: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
            with self.autocast(), record_function("model:D.penalty"):
                real_logits, gen_logits = D(real, real_labels), D(gen, gen_labels)
                inputs = PenaltyInputs(
                    D=D, real=real, real_logits=real_logits, gen=gen, gen_logits=gen_logits,
                    real_labels=real_labels, gen_labels=gen_labels, input_grad=self.D.input_grad,
                )  # fmt: skip
                penalty = torch.stack([p(inputs) for p in self.penalties]).sum()
                # + 0 x logits: every parameter gets a (zero) gradient, also those that do not shape the
                # input gradient (the logit's bias), which DDP without find_unused_parameters requires
                # (StyleGAN2-ADA's loss.py does the same).
                untouched = (real_logits.float().sum() + gen_logits.float().sum()) * 0
            return penalty * self.every + untouched, (penalty.detach(),)

        parts = micro_batches(self.accumulate, real, batch.real_labels, gen, batch.gen_labels)
        norm, flags, (penalty,) = self.D.accumulate_step(reg_loss, parts)
        # penalty_reg: before the x every scaling
        self.stats.add("reg", penalty_reg=penalty, gnorm_reg=norm, skipped_reg=flags[0], nonfinite_loss_reg=flags[1])
