"""Divergence: the run-level policy on top of the step's skips.

The step never applies an update with non-finite gradients; per phase it counts the steps it
skipped and those whose loss itself was inf/NaN (fastgan.train.step), and so does the lazy
R1/R2 step (phase "reg", fastgan.train.lazy_reg): a penalty that is non-finite on every lazy
step would otherwise leave D unregularised all run, without a word. Once per log interval,
from the values read there (the same host sync), the guard adds up the images of the bad steps:
a non-finite loss, or non-finite gradients outside fp16 (under fp16 a skip is an overflow that
the loss scale absorbs). An interval that ends with non-finite weights counts whole. A clean
interval ends the streak. A streak longer than `train.nonfinite_budget` images (default: one
log interval) stops the run with `Diverged` (exit code 3): a diverged run stops within two log
intervals. A run that ends inside a streak covering more than half of the images it trained in
this session stops the same way: one shorter than the budget would otherwise say "done" having
skipped nearly every step.

While a streak is open, and at a checkpoint that follows bad steps not yet read, `protect_up_to`
is the nimg where the trouble may have begun: pruning then keeps the newest checkpoint at or
before it, the last good one.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from fastgan.errors import Diverged
from fastgan.run import checkpoint as ckpt
from fastgan.train.build import Trainer

HIGH_LR = 1e-2  # Adam learning rates above this are far outside what GANs train with
PHASES = ("D", "G", "reg")  # the step's phases that count bad steps; "reg" is lazy R1/R2, an update of D
NET_OF = {"D": "D", "G": "G", "reg": "D"}
LABEL = {"reg": "the lazy R1/R2 step"}


class DivergenceGuard:
    def __init__(self, trainer: Trainer, run_dir: Path) -> None:
        t = trainer.cfg.train
        self.trainer, self.run_dir = trainer, run_dir
        self.budget = t.log_every if t.nonfinite_budget < 0 else t.nonfinite_budget
        self.fp16 = t.precision == "fp16"
        self.streak = 0  # images of bad steps in a row, at log granularity
        self.since: int | None = None  # nimg of the last read before the streak began
        self.last_read = trainer.cur_nimg
        self.session_start = trainer.cur_nimg  # where this process began (a resume's checkpoint)

    def add_weight_flags(self) -> None:
        """Before the log interval's read: 1.0 where G's or D's weights hold inf/NaN (device side).
        The max-abs norm never overflows on large finite weights, and is NaN when any weight is."""
        inf = float("inf")
        norms = [torch.nn.utils.get_total_norm(list(net.parameters()), inf) for net in (self.trainer.G, self.trainer.D)]
        flags = torch.stack(norms).isfinite().logical_not()
        self.trainer.step.stats.add("W", nonfinite_weights_G=flags[0], nonfinite_weights_D=flags[1])

    def pending_bad_steps(self) -> torch.Tensor:
        """Bad steps since the last read, as a device scalar (no sync)."""
        stats = self.trainer.step.stats
        names = [f"nonfinite_loss_{p}" for p in PHASES] + ([] if self.fp16 else [f"skipped_{p}" for p in PHASES])
        found = [x for x in (stats.peek(n) for n in names) if x is not None]
        return torch.stack(found).sum() if found else torch.zeros((), device=self.trainer.accelerator.device)

    def protect_up_to(self, suspect: bool) -> int | None:
        if self.since is not None:
            return self.since
        return self.last_read if suspect else None

    def bad_steps(self, values: dict[str, float], net: str) -> float:
        skipped = 0.0 if self.fp16 else values.get(f"skipped_{net}_total", 0.0)
        return max(values.get(f"nonfinite_loss_{net}_total", 0.0), skipped)

    def update(self, values: dict[str, float], cur_nimg: int, final: bool = False) -> None:
        """After each log read: extend or end the streak; raise Diverged past the budget, or at
        the end of the run when the streak is more than half of what this session trained."""
        cfg = self.trainer.cfg
        start, self.last_read = self.last_read, cur_nimg
        weights = [net for net in ("G", "D") if values.get(f"nonfinite_weights_{net}_max", 0.0) > 0]
        # Each D phase consumes one global batch; a G step follows d_steps of them; a lazy R1/R2
        # step stands for the loss.reg_every D steps it regularises.
        per_step = {"D": 1, "G": cfg.tricks.d_steps, "reg": max(cfg.loss.reg_every, 1)}
        images = max(self.bad_steps(values, p) * cfg.train.batch_size * per_step[p] for p in PHASES)
        bad = cur_nimg - start if weights else min(cur_nimg - start, math.ceil(images))
        if not bad:
            self.streak, self.since = 0, None
            return
        if self.since is None:
            self.since = start
        self.streak += bad
        if self.streak > self.budget or (final and 2 * self.streak > cur_nimg - self.session_start):
            raise Diverged(self.message(values, cur_nimg, weights) if self.trainer.accelerator.is_main_process else "")

    def limit_text(self, cur_nimg: int) -> str:
        if self.streak > self.budget:
            return f"train.nonfinite_budget = {self.budget:,}"
        return f"the run ended inside it: more than half of the {cur_nimg - self.session_start:,} images it trained"

    def message(self, values: dict[str, float], cur_nimg: int, weights: list[str]) -> str:
        cfg = self.trainer.cfg
        losses = [p for p in PHASES if p not in weights and values.get(f"nonfinite_loss_{p}_total", 0.0) > 0]
        grads = [p for p in PHASES if p not in weights + losses and self.bad_steps(values, p) > 0]
        parts = (("weights", weights), ("loss" if len(losses) == 1 else "losses", losses), ("gradients", grads))
        what = [f"the {part} of {' and '.join(LABEL.get(p, p) for p in phases)}" for part, phases in parts if phases]
        nets = sorted({NET_OF[p] for p in (*weights, *losses, *grads)})
        high = [f"optim.{net}.lr = {getattr(cfg.optim, net).lr:g}" for net in nets if getattr(cfg.optim, net).lr > HIGH_LR]
        if high:
            cause = f"a learning rate far too high ({', '.join(high)})"
        elif set(losses + grads) == {"reg"}:
            cause = f"the R1/R2 penalty alone (loss.r1_gamma = {cfg.loss.r1_gamma:g}, loss.r2_gamma = {cfg.loss.r2_gamma:g}: lower them)"
        elif self.fp16:
            cause = 'fp16 overflow in the forward pass (try train.precision = "bf16")'
        else:
            cause = f"unstable training (lower optim.{nets[0]}.lr, or add loss.r1_gamma or tricks.label_smoothing)"
        found = [p for p in ckpt.list_checkpoints(self.run_dir) if self.since is not None and ckpt.checkpoint_nimg(p) <= self.since]
        good = (
            f"continue from the last good checkpoint with: fastgan train --resume {self.run_dir} --from {found[-1].name} --set ..."
            if found
            else "no checkpoint was written before it: start again with other settings"
        )
        return (
            f"training diverged at {cur_nimg:,} images: {' and '.join(what)} were non-finite for {self.streak:,} images in a row "
            f"({self.limit_text(cur_nimg)}); likely cause: {cause}. Nothing non-finite was saved; {good}"
        )
