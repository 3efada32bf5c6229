"""The step's guarantees, in process: per-network fp16 scalers, the G phase, EMA, compile."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fastgan.losses import get_loss
from fastgan.run.resume import restore, save_checkpoint
from fastgan.train.build import Trainer
from fastgan.train.ema import EMA
from fastgan.train.step import d_objective
from tests.support import make, steps


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters only: BatchNorm statistics update in every forward, skipped step or not."""
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def opt_snapshot(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [t.clone() for s in opt.state.values() for t in s.values()]


def inject_overflow(trainer: Trainer, net: str) -> Callable[[], None]:
    """Make one network's loss overflow to inf (so its scaled gradients do) through the objective
    the step calls; returns the undo."""
    step = trainer.step
    clean = step.objective
    if net == "D":
        loss = get_loss(trainer.cfg.loss.name)
        overflowed = dataclasses.replace(loss, d_loss=lambda *a: loss.d_loss(*a) * math.inf)
        step.objective = dataclasses.replace(clean, d=d_objective(overflowed))
    else:
        step.objective = dataclasses.replace(clean, g=lambda *args: clean.g(*args) * math.inf)

    def undo() -> None:
        step.objective = clean

    return undo


def test_fp16_overflow_in_D_skips_only_D(tiny_config: Path) -> None:
    trainer = make(tiny_config, "train.precision=fp16")
    s = trainer.step
    steps(trainer, 2)
    s.stats.read(lambda x: x, lambda x: x)  # start the counters afresh
    D_before, optD_before = snapshot(trainer.D), opt_snapshot(s.D.opt)
    scale_D, scale_G = s.D.scaler.get_scale(), s.G.scaler.get_scale()
    G_before = snapshot(trainer.G)
    undo = inject_overflow(trainer, "D")
    real, labels = next(iter(trainer.data))
    s.d_phase(real, labels, 0.0)
    undo()
    for k, v in snapshot(trainer.D).items():
        assert torch.equal(v, D_before[k]), f"D.{k} changed in a skipped step"
    assert all(torch.equal(a, b) for a, b in zip(opt_snapshot(s.D.opt), optD_before, strict=True)), "D's Adam state changed"
    assert s.D.scaler.get_scale() == scale_D / 2  # D backed off ...
    assert s.G.scaler.get_scale() == scale_G  # ... G's scale is its own
    s.g_phase(trainer.cur_nimg)
    assert any(not torch.equal(v, G_before[k]) for k, v in snapshot(trainer.G).items()), "G should still step"
    stats = s.stats.read(lambda x: x, lambda x: x)
    assert stats["skipped_D_total"] == 1 and stats["skipped_G_total"] == 0


def test_fp16_overflow_in_G_skips_G_and_its_EMA_update(tiny_config: Path) -> None:
    trainer = make(tiny_config, "train.precision=fp16")
    s = trainer.step
    steps(trainer, 2)
    G_before, ema_before = snapshot(trainer.G), snapshot(trainer.G_ema)
    scale_D, scale_G = s.D.scaler.get_scale(), s.G.scaler.get_scale()
    undo = inject_overflow(trainer, "G")
    s.g_phase(trainer.cur_nimg + 10_000)
    undo()
    assert all(torch.equal(v, G_before[k]) for k, v in snapshot(trainer.G).items())
    assert all(torch.equal(v, ema_before[k]) for k, v in snapshot(trainer.G_ema).items()), "EMA moved on a skipped step"
    assert s.G.scaler.get_scale() == scale_G / 2 and s.D.scaler.get_scale() == scale_D


def test_both_scalers_are_checkpointed(tiny_config: Path, tmp_path: Path) -> None:
    trainer = make(tiny_config, "train.precision=fp16")
    s = trainer.step
    steps(trainer, 1)
    s.G.scaler.update(1024.0)  # distinct scales, so a swap would show
    s.D.scaler.update(256.0)
    save_checkpoint(trainer, tmp_path)
    fresh = make(tiny_config, "train.precision=fp16")
    restore(fresh, tmp_path / "checkpoints" / "nimg-000000016")
    assert fresh.step.G.scaler.get_scale() == s.G.scaler.get_scale() != fresh.step.D.scaler.get_scale()
    assert fresh.step.D.scaler.get_scale() == s.D.scaler.get_scale()
    assert fresh.cur_nimg == 16


def test_G_phase_leaves_D_gradients_alone(tiny_config: Path) -> None:
    trainer = make(tiny_config)
    steps(trainer, 1)
    trainer.step.D.opt.zero_grad(set_to_none=True)
    trainer.step.g_phase(trainer.cur_nimg)
    assert all(p.grad is None for p in trainer.D.parameters())
    assert all(p.requires_grad for p in trainer.D.parameters())  # unfrozen again for the D phase
    assert any(p.grad is not None for p in trainer.G.parameters())


def test_ema_half_life_is_counted_in_images(tiny_config: Path) -> None:
    ema = EMA(torch.nn.Linear(2, 2), half_life_images=1000, images_per_step=100, rampup=0.0)
    assert ema.beta(5000) ** 10 == pytest.approx(0.5)  # ten steps of 100 images halve the weight
    ramped = EMA(torch.nn.Linear(2, 2), half_life_images=1000, images_per_step=100, rampup=0.05)
    assert ramped.beta(2000) == pytest.approx(0.5)  # half-life capped at 0.05 x 2000 = 100 images
    assert EMA(torch.nn.Linear(2, 2), half_life_images=0, images_per_step=100, rampup=0.0).beta(10) == 0.0  # 0: G_ema = G
    # a G step after d_steps D phases has seen d_steps real batches: the half-life counts them all
    trainer = make(tiny_config, "tricks.d_steps=3")
    assert trainer.step.ema.images_per_step == 3 * trainer.cfg.train.batch_size


def test_bf16_step_runs_and_keeps_fp32_weights(tiny_config: Path) -> None:
    trainer = make(tiny_config, "train.precision=bf16")
    steps(trainer, 2)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in trainer.G.parameters())


@pytest.mark.parametrize(
    "overrides",
    [
        ("loss.name=hinge",),
        ("loss.name=wgan-gp",),
        ("loss.r1_gamma=1.0",),
        ("tricks.d_batches=concat",),
        ("tricks.label_smoothing=0.1", "tricks.label_flip=0.05", "tricks.instance_noise=0.1"),
        ("model.conditional=true",),
        ("model.conditional=true", "model.d_conditioning=concat"),
    ],
)
def test_every_loss_and_trick_trains(tiny_config: Path, overrides: tuple[str, ...]) -> None:
    trainer = make(tiny_config, *overrides)
    steps(trainer, 2)
    stats = trainer.step.stats.read(lambda x: x, lambda x: x)
    assert all(math.isfinite(stats[k]) for k in ("loss_D", "loss_G", "gnorm_D", "gnorm_G"))


def test_compiled_step_matches_eager_and_does_not_recompile(tiny_config: Path) -> None:
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager = make(tiny_config)
    compiled = make(tiny_config, "train.compile=default", "train.compile_backend=aot_eager")
    steps(eager, 1)
    steps(compiled, 1)
    for k, v in snapshot(eager.G).items():
        torch.testing.assert_close(snapshot(compiled.G)[k], v, rtol=1e-4, atol=1e-5)
    graphs_after_first = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    steps(compiled, 19)
    # the first step compiles G (no_grad and grad) and D (trainable and frozen); the next 19 add nothing
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs_after_first
    assert graphs_after_first <= 8
    assert not any(k.startswith("_orig_mod.") for k in compiled.G.state_dict())  # checkpoints keep plain keys


def test_auto_precision_is_bf16_only_where_the_hardware_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastgan import hardware
    from fastgan.hardware import resolve_precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"flags": "fpu avx2 avx512f avx512_bf16 amx_bf16"})
    assert resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"flags": "fpu avx2 fma"})  # bf16 would be emulated: ~20x slower
    assert resolve_precision("auto", cpu) == "no"
    assert resolve_precision("fp16", cpu) == "fp16"  # explicit choices stay


@pytest.mark.parametrize("mode", ["reuse", "fresh"])
def test_g_latents_reuse_regenerates_the_D_phase_images(tiny_config: Path, mode: str) -> None:
    """tricks.g_latents = "reuse" (the classic MNIST GAN tutorials' loop): the G phase runs G on the D phase's
    z; "fresh" draws new z."""
    trainer = make(tiny_config, f"tricks.g_latents={mode}")
    G, seen = trainer.step.G, list[torch.Tensor]()
    run = G.run

    def recording(z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        seen.append(z.clone())
        return run(z, labels)

    G.run = recording
    steps(trainer, 2)
    assert len(seen) == 4  # a D phase and a G phase per step
    assert torch.equal(seen[0], seen[1]) == (mode == "reuse") and torch.equal(seen[2], seen[3]) == (mode == "reuse")
    assert not torch.equal(seen[0], seen[2])  # each step draws anew
