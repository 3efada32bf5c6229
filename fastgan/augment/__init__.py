"""Augmentation of every image D sees, chosen once at build time; the step calls it unconditionally.

- `NoAugment`: the identity (augment.policy = "").
- `DiffAugment`: the policy's ops, each applied to an image with probability p (a device
  tensor), the same object for real and generated images in both phases, so they always get
  the same policy and the same p (Zhao et al. 2020, arXiv:2006.10738).
- `AdaptiveAugment`: DiffAugment whose p follows ADA's rule (Karras et al. 2020,
  arXiv:2006.06676): `observe` sums sign(D(real)) on the device in every D phase; `adjust`,
  which the step calls after each D phase, moves p every `ADJUST_EVERY` D steps by
  sign(r - target) x images since the last adjustment / augment.speed_images, clamped to [0, 1],
  with r = E[sign(D(real))] summed over every process (an all-reduce of one number, on the
  device: no host sync). Each process keeps its own running sum; a checkpoint holds their
  total, which a resume puts back on the main process alone, so the next all-reduce sees the
  same total at any process count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from fastgan.augment.ops import OPS, Op
from fastgan.config import AugmentConfig
from fastgan.errors import UsageError
from fastgan.stats import DeviceStats

ADJUST_EVERY = 4  # D steps between ADA adjustments (StyleGAN2-ADA's ada_interval)


def parse_policy(policy: str) -> list[str]:
    names = [n.strip() for n in policy.split(",") if n.strip()]
    unknown = [n for n in names if n not in OPS]
    if unknown:
        bad, choices = ", ".join(map(repr, unknown)), ", ".join(OPS)
        raise UsageError(f'augment.policy: unknown op {bad}; choose from: {choices}, e.g. "color,translation,cutout"')
    return names


class NoAugment:
    def __call__(self, images: Tensor) -> Tensor:
        return images

    def observe(self, real_logits: Tensor) -> None:
        """ADA's signal; nothing to do without ADA."""

    def adjust(self) -> None:
        """ADA's move of p; nothing to do without ADA."""

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class DiffAugment(NoAugment):
    def __init__(self, ops: list[Op], p: float, device: torch.device) -> None:
        self.ops = ops
        self.p = torch.tensor(float(p), device=device)  # 0-dim, on the device: ADA moves it there

    def __call__(self, images: Tensor) -> Tensor:
        b = images.shape[0]
        for op in self.ops:
            apply = (torch.rand(b, device=images.device) < self.p).to(images.dtype)  # per image, no sync
            images = op(images, apply)
        return images

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p.detach().cpu()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "p" in state:
            self.p.copy_(state["p"])


class AdaptiveAugment(DiffAugment):
    def __init__(
        self,
        ops: list[Op],
        p: float,
        device: torch.device,
        *,
        target: float,
        speed_images: int,
        images_per_step: int,
        reduce_sum: Callable[[Tensor], Tensor],
        stats: DeviceStats,
        main: bool,
    ) -> None:
        super().__init__(ops, p, device)
        self.target = target
        self.images_per_adjustment = ADJUST_EVERY * images_per_step  # real images scored between adjustments (all processes)
        self.step_size = self.images_per_adjustment / speed_images  # p's largest move per adjustment
        self.reduce_sum = reduce_sum  # across processes, so every process keeps the same p
        self.stats = stats
        self.main = main  # the main process holds the total of a restored running sum
        self.sign_sum = torch.zeros((), device=device)  # sum of sign(D(real)) since the last adjustment, this process
        self.steps = 0  # host counter of D steps since the last adjustment
        self.cap = torch.ones((), device=device)  # p's ceiling: 1, or [schedule.augment_p] (fastgan.train.schedule)

    def observe(self, real_logits: Tensor) -> None:
        """Add this D phase's sign(D(real)) to the running sum (device side, no communication)."""
        sign = real_logits.detach().float().sign()
        self.sign_sum += sign.sum()
        self.stats.add("aug", augment_p=self.p, augment_rt=sign.mean())  # p, and this step's E[sign(D(real))]
        self.steps += 1

    def adjust(self) -> None:
        """Every ADJUST_EVERY D steps: all-reduce the sum over processes and move p."""
        if self.steps == ADJUST_EVERY:  # a host counter, not a device value
            r = self.reduce_sum(self.sign_sum) / self.images_per_adjustment  # all-reduce: the only collective here
            self.p.copy_(torch.minimum((self.p + torch.sign(r - self.target) * self.step_size).clamp_(0.0, 1.0), self.cap))
            self.sign_sum.zero_()
            self.steps = 0

    def set_cap(self, cap: float) -> None:
        """A ceiling on p from a schedule, in place on the device (no sync): a falling one lowers p
        at once, and adjustments never take p above it. A function of images seen, set before each
        step, so a checkpoint need not hold it."""
        self.cap.fill_(cap)
        self.p.clamp_(max=cap)

    def state_dict(self) -> dict[str, Any]:
        """Call on every process (a checkpoint is written by all): `sign_sum` is the running sum
        of all processes, an all-reduce of one number. Sums of signs are whole numbers, exact in
        float32, so the total restored is exactly what the next adjustment would have summed."""
        total = self.reduce_sum(self.sign_sum.detach().clone())
        return {"p": self.p.detach().cpu(), "sign_sum": total.cpu(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The total running sum on the main process, zero on the others (checkpoints before the
        total was saved hold the main process's own sum: the others' part is lost)."""
        super().load_state_dict(state)
        if "sign_sum" in state:
            self.sign_sum.copy_(state["sign_sum"] if self.main else torch.zeros(()))
            self.steps = int(state["steps"])  # a host counter, the same on every process


Augment = NoAugment  # the interface: __call__, observe, adjust, state_dict, load_state_dict


def build_augment(
    cfg: AugmentConfig,
    *,
    device: torch.device,
    images_per_step: int,
    reduce_sum: Callable[[Tensor], Tensor],
    stats: DeviceStats,
    main: bool = True,
) -> Augment:
    """The augmentation a config asks for (images_per_step: the global batch of one D step;
    reduce_sum: a sum over processes; main: whether this is the main process)."""
    ops = [OPS[name] for name in parse_policy(cfg.policy)]
    if not ops:
        return NoAugment()
    if cfg.target <= 0:
        return DiffAugment(ops, cfg.p, device)
    return AdaptiveAugment(
        ops, cfg.p, device, target=cfg.target, speed_images=cfg.speed_images, images_per_step=images_per_step,
        reduce_sum=reduce_sum, stats=stats, main=main,
    )  # fmt: skip
