"""Schedules: training values as pure functions of images seen (`[schedule]`, docs/schedules.md).

Each scheduled value is a `Curve`: a linear warm-up from 0 to `start`, then a cosine, linear or
constant path from `start` to `end`, which it reaches at `length_images` images seen and then
holds (R3GAN's `cosine_decay_with_warmup`, brownvc/R3GAN training/training_loop.py, whose
CIFAR-10 recipe moves lr 2e-4 -> 5e-5, beta2 0.9 -> 0.99, gamma 0.05 -> 0.005, the EMA
half-life 0 -> 5M images and augmentation p 0 -> 0.55 over 20M images).

`Schedules.apply(cur_nimg)` runs once per step, before it (fastgan.train.build.Trainer.train_step),
outside the GAN step's body. It only does host arithmetic and host writes (Adam's param_group lr
and betas, the R1/R2 penalties' host-float gamma, the EMA half-life) and in-place fills of 0-dim
device tensors (augmentation p, ADA's cap): no host sync, nothing that makes torch.compile
recompile. Images seen counts the whole global batch, so every process computes the same value,
and a resume at any image count continues with exactly the values an unbroken run would have.
With no `[schedule]` section nothing is scheduled and `apply` does nothing: today's run, bitwise.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from fastgan.config import AdamConfig, Config, ValueSchedule

if TYPE_CHECKING:  # the math and `describe` need no torch (fastgan train --dry-run stays quick)
    import torch

    from fastgan.augment import Augment, DiffAugment
    from fastgan.losses.penalties import ZeroCentredPenalty
    from fastgan.losses.plan import RegularisationPlan
    from fastgan.train.ema import EMA

UNSET = -1.0  # start/end = -1: the configured value (start), the start (end)


@dataclass(frozen=True)
class Curve:
    """One value against images seen: the resolved form of a `[schedule.<value>]` section."""

    start: float
    end: float
    shape: str = "cosine"  # cosine | linear | constant
    warmup_images: int = 0
    length_images: int = 0

    def __call__(self, nimg: int) -> float:
        """The value at `nimg` images seen (host arithmetic only)."""
        if nimg < self.warmup_images:
            return self.start * nimg / self.warmup_images  # linear from 0
        if self.shape == "constant":
            return self.start
        if nimg >= self.length_images:
            return self.end  # held, exactly
        t = (nimg - self.warmup_images) / (self.length_images - self.warmup_images)  # 0 -> 1 after the warm-up
        if self.shape == "linear":
            return self.start + (self.end - self.start) * t
        return self.start + (self.end - self.start) * 0.5 * (1.0 - math.cos(math.pi * t))


def curve(s: ValueSchedule, configured: float) -> Curve:
    """A section's curve, its -1s replaced: start by the configured value, end by start."""
    start = configured if s.start == UNSET else s.start
    end = start if s.end == UNSET or s.shape == "constant" else s.end
    return Curve(start, end, s.shape, s.warmup_images, s.length_images)


def active(s: ValueSchedule) -> bool:
    """A section that says anything: an absent one (all defaults) schedules nothing."""
    return s != ValueSchedule()


def configured(cfg: Config) -> dict[str, float]:
    """Each schedulable value as the rest of the config sets it: where its schedule starts."""
    return {
        "lr_G": cfg.optim.G.lr,
        "lr_D": cfg.optim.D.lr,
        "beta2_G": float(cfg.optim.G.betas[1]),
        "beta2_D": float(cfg.optim.D.betas[1]),
        "r1_gamma": cfg.loss.r1_gamma,
        "r2_gamma": cfg.loss.r2_gamma,
        "ema_halflife_images": float(cfg.tricks.ema_halflife_images),
        "augment_p": cfg.augment.p,
    }


def curves(cfg: Config) -> dict[str, Curve]:
    """The curve of every value a config schedules, by its `[schedule]` name."""
    start = configured(cfg)
    return {f.name: curve(s, start[f.name]) for f in fields(cfg.schedule) if active(s := getattr(cfg.schedule, f.name))}


def describe(cfg: Config) -> list[str]:
    """One line per scheduled value, with its value at a few image counts (fastgan train --dry-run)."""
    lines = []
    for name, c in curves(cfg).items():
        end = max(c.length_images, c.warmup_images)
        points = sorted({0, c.warmup_images, *(c.warmup_images + (end - c.warmup_images) * i // 4 for i in range(1, 5))})
        shown = ", ".join(f"{n:,} img {c(n):.4g}" for n in points)
        lines.append(f"schedule.{name} ({c.shape}): {shown}; then held")
    return lines


Values = dict[str, float]  # log key -> value at some images seen


class Schedules:
    """The scheduled values of a run (`curves`, by the key they are logged under) and what sets
    them (`setters`, each reading the values it needs)."""

    def __init__(self, curves: dict[str, Curve] | None = None, setters: list[Callable[[Values], None]] | None = None) -> None:
        self.curves = curves or {}
        self.setters = setters or []

    def values(self, nimg: int) -> Values:
        """Every scheduled value at `nimg` images seen: for metrics.jsonl and TensorBoard (no sync)."""
        return {name: c(nimg) for name, c in self.curves.items()}

    def apply(self, nimg: int) -> None:
        """Set every scheduled value for the step that starts at `nimg` images seen."""
        if self.curves:
            values = self.values(nimg)
            for setter in self.setters:
                setter(values)


def adam_setter(opt: torch.optim.Optimizer, net: str, opt_cfg: AdamConfig, plan: RegularisationPlan) -> Callable[[Values], None]:
    """Adam's lr and betas from the scheduled lr_<net> and beta2_<net> (the configured value where
    one is not scheduled), with lazy regularisation's lr*c, beta**c on top (fastgan.losses.plan)."""

    def set_adam(values: Values) -> None:
        lr = values.get(f"lr_{net}", opt_cfg.lr)
        betas = (float(opt_cfg.betas[0]), values.get(f"beta2_{net}", float(opt_cfg.betas[1])))
        lr, betas = plan.adjust(net, lr, betas)
        for group in opt.param_groups:
            group["lr"], group["betas"] = lr, betas

    return set_adam


def build_schedules(
    cfg: Config, *, opt_G: torch.optim.Optimizer, opt_D: torch.optim.Optimizer, plan: RegularisationPlan, ema: EMA, augment: Augment
) -> Schedules:
    """The schedules a config asks for, wired to the pieces they move (fastgan.validate has
    checked that each scheduled value exists: R1 for r1_gamma, a policy for augment_p, ...)."""
    from fastgan.augment import AdaptiveAugment, DiffAugment
    from fastgan.losses.penalties import ZeroCentredPenalty

    wanted, setters = curves(cfg), []
    for net, opt, opt_cfg in (("G", opt_G, cfg.optim.G), ("D", opt_D, cfg.optim.D)):
        if f"lr_{net}" in wanted or f"beta2_{net}" in wanted:
            setters.append(adam_setter(opt, net, opt_cfg, plan))
    penalties = {p.side: p for p in (*plan.in_step, *plan.lazy) if isinstance(p, ZeroCentredPenalty)}
    for name, side in (("r1_gamma", "real"), ("r2_gamma", "gen")):
        if name in wanted:
            assert side in penalties, f"schedule.{name} without its penalty (fastgan.validate checks this)"
            setters.append(gamma_setter(penalties[side], name))
    if "ema_halflife_images" in wanted:
        setters.append(lambda values: setattr(ema, "half_life", values["ema_halflife_images"]))
    if "augment_p" in wanted:
        assert isinstance(augment, DiffAugment), "schedule.augment_p without augmentation (fastgan.validate checks this)"
        if isinstance(augment, AdaptiveAugment):
            # ADA's p is state its controller moves; the schedule is its ceiling (docs/schedules.md),
            # logged as augment_p_cap beside ADA's own augment_p
            wanted["augment_p_cap"] = wanted.pop("augment_p")
            setters.append(lambda values: augment.set_cap(values["augment_p_cap"]))
        else:
            setters.append(p_setter(augment))
    return Schedules(wanted, setters)


def gamma_setter(penalty: ZeroCentredPenalty, name: str) -> Callable[[Values], None]:
    def set_gamma(values: Values) -> None:
        penalty.gamma = values[name]  # a host float: R1/R2 always run eagerly (double backward)

    return set_gamma


def p_setter(augment: DiffAugment) -> Callable[[Values], None]:
    def set_p(values: Values) -> None:
        augment.p.fill_(values["augment_p"])  # in place, on the device: no sync, no recompile

    return set_p
