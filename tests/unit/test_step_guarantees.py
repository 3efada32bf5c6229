"""What the one step function guarantees in every precision: real skips, a still EMA, fp16-safe
penalties, and G_ema BatchNorm statistics of its own."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from fastgan.losses import get_loss
from fastgan.losses.penalties import PenaltyInputs, r1_penalty
from fastgan.train.build import Trainer
from fastgan.train.ema import EMA
from fastgan.train.step import Batch, Net, d_objective
from tests.support import make


def params(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def adam_state(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [t.clone() for s in opt.state.values() for t in s.values()]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def warmed(config: Path, precision: str) -> tuple[Trainer, Iterator[Batch]]:
    """A trainer two steps in, with its stats counters read (so the next step's stand alone)."""
    trainer = make(config, f"train.precision={precision}")
    data = iter(trainer.data)
    for _ in range(2):
        trainer.train_step(data)
    trainer.step.stats.read(lambda x: x, lambda x: x)
    return trainer, data


@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_a_non_finite_D_step_is_skipped_outside_fp16(tiny_config: Path, precision: str) -> None:
    trainer, data = warmed(tiny_config, precision)
    s = trainer.step
    D_before, adam_before = params(trainer.D), adam_state(s.D.opt)
    loss = get_loss(trainer.cfg.loss.name)
    s.objective = dataclasses.replace(s.objective, d=d_objective(dataclasses.replace(loss, d_loss=lambda *a: loss.d_loss(*a) * math.nan)))
    real, labels = next(data)
    s.d_phase(real, labels, 0.0)
    assert same(params(trainer.D), D_before), "D moved on NaN gradients"
    assert all(torch.equal(a, b) for a, b in zip(adam_state(s.D.opt), adam_before, strict=True)), "Adam's state (or step count) moved"
    stats = s.stats.read(lambda x: x, lambda x: x)
    assert stats["skipped_D_total"] == 1 and stats["nonfinite_loss_D_total"] == 1  # the cause: the loss itself


@pytest.mark.parametrize("precision", ["no", "bf16", "fp16"])
def test_a_non_finite_G_step_moves_neither_G_nor_G_ema(tiny_config: Path, precision: str) -> None:
    trainer, _ = warmed(tiny_config, precision)
    s = trainer.step
    G_before, ema_before = params(trainer.G), params(trainer.G_ema)
    g_loss = s.objective.g
    s.objective = dataclasses.replace(s.objective, g=lambda *logits: g_loss(*logits) * math.inf)
    s.g_phase(trainer.cur_nimg + 10_000)
    assert same(params(trainer.G), G_before) and same(params(trainer.G_ema), ema_before)
    stats = s.stats.read(lambda x: x, lambda x: x)
    assert stats["skipped_G_total"] == 1


def test_ema_is_a_true_no_op_when_G_holds_nan() -> None:
    """lerp_(G, 0) writes NaN when G is NaN (0 * NaN = NaN): the skip must select, not weigh."""
    G, G_ema = nn.Linear(3, 2), nn.Linear(3, 2)
    ema = EMA(G_ema, half_life_images=100, images_per_step=10, rampup=0.0)
    before = params(G_ema)
    with torch.no_grad():
        G.weight.fill_(math.nan)
    ema.update(G, torch.tensor(1.0), cur_nimg=1000)  # skipped
    assert same(params(G_ema), before)
    with torch.no_grad():
        G.weight.fill_(1.0)
        G.bias.fill_(1.0)
    ema.update(G, torch.tensor(0.0), cur_nimg=1000)  # taken: moves towards G
    assert all(torch.all(p > before[k]) | torch.all(before[k] >= 1) for k, p in params(G_ema).items())
    assert torch.allclose(G_ema.weight, before["weight"].lerp(torch.ones(2, 3), 1 - ema.beta(1000)))


class TinyD(nn.Module):
    """A linear D whose output is scaled far down: its input gradients (3e-8) underflow in fp16
    unless the loss scale lifts them first (the failure PyTorch's AMP gradient-penalty recipe avoids)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 1)
        nn.init.constant_(self.fc.weight, 0.03)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)).squeeze(1) * 1e-6


def r1_value(precision: str, device: str = "cpu") -> float:
    D = TinyD().to(device)
    # 2**14, not GradScaler's default 2**16: 65536 itself overflows fp16 (max 65504) in D's backward
    scaler = torch.amp.GradScaler(device, init_scale=2.0**14, enabled=precision == "fp16")
    net = Net("D", D, D, torch.optim.Adam(D.parameters(), fused=True), scaler, lambda: torch.autocast(device, enabled=False))
    x = torch.randn(8, 1, 8, 8, device=device, generator=torch.Generator(device).manual_seed(0)).requires_grad_(True)
    labels = torch.zeros(8, dtype=torch.long, device=device)
    with torch.autocast(device, dtype=torch.float16, enabled=precision == "fp16"):
        logits = D(x, labels)
        inputs = PenaltyInputs(
            D=D, real=x, real_logits=logits, gen=x, gen_logits=logits, real_labels=labels, gen_labels=labels, input_grad=net.input_grad
        )
        return float(r1_penalty(gamma=1e10)(inputs).detach())


def test_r1_under_fp16_matches_fp32() -> None:
    fp32 = r1_value("no")
    assert fp32 == pytest.approx(0.5 * 1e10 * 64 * (0.03e-6) ** 2, rel=1e-4)
    assert r1_value("fp16") == pytest.approx(fp32, rel=1e-2)  # unscaled fp16 gives 0 (or 4x, rounded up)


def test_G_ema_gets_batchnorm_statistics_of_its_own_weights(tiny_config: Path) -> None:
    trainer = make(tiny_config)
    data = iter(trainer.data)
    for _ in range(4):
        trainer.train_step(data)
    bn_G = next(m for m in trainer.G.modules() if isinstance(m, nn.BatchNorm2d))
    bn_ema = next(m for m in trainer.G_ema.modules() if isinstance(m, nn.BatchNorm2d))
    rng_before = torch.get_rng_state()
    latent_before = trainer.step.latents.generator.get_state()
    trainer.ready_G_ema()
    first = bn_ema.running_mean.clone(), bn_ema.running_var.clone()
    assert not torch.allclose(first[0], bn_G.running_mean), "G_ema still carries G's statistics"
    trainer.ready_G_ema()  # seeded by images seen: the same statistics again (to rounding: cuDNN is not bitwise repeatable)
    torch.testing.assert_close(bn_ema.running_mean, first[0], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(bn_ema.running_var, first[1], rtol=1e-4, atol=1e-6)
    assert torch.equal(torch.get_rng_state(), rng_before) and torch.equal(trainer.step.latents.generator.get_state(), latent_before)
    assert not trainer.G_ema.training and bn_ema.momentum == bn_G.momentum


def test_fused_adam_skip_keeps_step_counts(tiny_config: Path) -> None:
    """A skipped step leaves Adam's step counter where it was (bias correction stays right)."""
    trainer = make(tiny_config)
    data = iter(trainer.data)
    trainer.train_step(data)
    steps_before = [s["step"].clone() for s in trainer.step.G.opt.state.values()]
    g_loss = trainer.step.objective.g
    trainer.step.objective = dataclasses.replace(trainer.step.objective, g=lambda *logits: g_loss(*logits) * math.nan)
    trainer.step.g_phase(trainer.cur_nimg)
    assert all(torch.equal(s["step"], b) for s, b in zip(trainer.step.G.opt.state.values(), steps_before, strict=True))
