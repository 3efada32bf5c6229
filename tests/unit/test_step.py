"""What the one step function guarantees, in process and in every precision: a non-finite step is
skipped and moves nothing (per network under fp16, each with its own scaler), a still EMA,
fp16-safe penalties, G_ema BatchNorm statistics of its own, a G phase that leaves D alone, every
loss and trick, and a compiled step that matches eager. tests/gpu/test_cuda_step.py runs some of
these again on CUDA."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from fastgan.losses import get_loss
from fastgan.losses.penalties import PenaltyInputs, r1_penalty
from fastgan.run.resume import restore, save_checkpoint
from fastgan.train.build import Trainer
from fastgan.train.ema import EMA
from fastgan.train.step import Batch, Net, d_objective
from tests.support import make, params, steps


def adam_state(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [t.clone() for s in opt.state.values() for t in s.values()]


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def scale_loss(trainer: Trainer, net: str, factor: float) -> Callable[[], None]:
    """Multiply one network's loss by `factor` (inf: an fp16-style overflow of its scaled gradients;
    NaN) through the objective the step calls; returns the undo."""
    step = trainer.step
    clean = step.objective
    if net == "D":
        loss = get_loss(trainer.cfg.loss.name)
        scaled = dataclasses.replace(loss, d_loss=lambda *a: loss.d_loss(*a) * factor)
        step.objective = dataclasses.replace(clean, d=d_objective(scaled))
    else:
        step.objective = dataclasses.replace(clean, g=lambda *args: clean.g(*args) * factor)

    def undo() -> None:
        step.objective = clean

    return undo


def warmed(config: Path, precision: str) -> tuple[Trainer, Iterator[Batch]]:
    """A trainer two steps in, with its stats counters read (so the next step's stand alone)."""
    trainer = make(config, f"train.precision={precision}")
    data = iter(trainer.data)
    for _ in range(2):
        trainer.train_step(data)
    trainer.step.stats.read(lambda x: x, lambda x: x)
    return trainer, data


# ---------------------------------------------------------------------------- skipped steps


@pytest.mark.parametrize("precision", ["no", "bf16"])
def test_a_non_finite_D_step_is_skipped_outside_fp16(tiny_config: Path, precision: str) -> None:
    trainer, data = warmed(tiny_config, precision)
    s = trainer.step
    D_before, adam_before = params(trainer.D), adam_state(s.D.opt)
    scale_loss(trainer, "D", math.nan)
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
    scale_loss(trainer, "G", math.inf)
    s.g_phase(trainer.cur_nimg + 10_000)
    assert same(params(trainer.G), G_before) and same(params(trainer.G_ema), ema_before)
    stats = s.stats.read(lambda x: x, lambda x: x)
    assert stats["skipped_G_total"] == 1


def test_fp16_overflow_in_D_skips_only_D(tiny_config: Path) -> None:
    trainer = make(tiny_config, "train.precision=fp16")
    s = trainer.step
    steps(trainer, 2)
    s.stats.read(lambda x: x, lambda x: x)  # start the counters afresh
    D_before, optD_before = params(trainer.D), adam_state(s.D.opt)
    scale_D, scale_G = s.D.scaler.get_scale(), s.G.scaler.get_scale()
    G_before = params(trainer.G)
    undo = scale_loss(trainer, "D", math.inf)
    real, labels = next(iter(trainer.data))
    s.d_phase(real, labels, 0.0)
    undo()
    for k, v in params(trainer.D).items():
        assert torch.equal(v, D_before[k]), f"D.{k} changed in a skipped step"
    assert all(torch.equal(a, b) for a, b in zip(adam_state(s.D.opt), optD_before, strict=True)), "D's Adam state changed"
    assert s.D.scaler.get_scale() == scale_D / 2  # D backed off ...
    assert s.G.scaler.get_scale() == scale_G  # ... G's scale is its own
    s.g_phase(trainer.cur_nimg)
    assert any(not torch.equal(v, G_before[k]) for k, v in params(trainer.G).items()), "G should still step"
    stats = s.stats.read(lambda x: x, lambda x: x)
    assert stats["skipped_D_total"] == 1 and stats["skipped_G_total"] == 0


def test_fp16_overflow_in_G_skips_G_and_its_EMA_update(tiny_config: Path) -> None:
    trainer = make(tiny_config, "train.precision=fp16")
    s = trainer.step
    steps(trainer, 2)
    G_before, ema_before = params(trainer.G), params(trainer.G_ema)
    scale_D, scale_G = s.D.scaler.get_scale(), s.G.scaler.get_scale()
    undo = scale_loss(trainer, "G", math.inf)
    s.g_phase(trainer.cur_nimg + 10_000)
    undo()
    assert all(torch.equal(v, G_before[k]) for k, v in params(trainer.G).items())
    assert all(torch.equal(v, ema_before[k]) for k, v in params(trainer.G_ema).items()), "EMA moved on a skipped step"
    assert s.G.scaler.get_scale() == scale_G / 2 and s.D.scaler.get_scale() == scale_D


def test_fused_adam_skip_keeps_step_counts(tiny_config: Path) -> None:
    """A skipped step leaves Adam's step counter where it was (bias correction stays right)."""
    trainer = make(tiny_config)
    data = iter(trainer.data)
    trainer.train_step(data)
    steps_before = [s["step"].clone() for s in trainer.step.G.opt.state.values()]
    scale_loss(trainer, "G", math.nan)
    trainer.step.g_phase(trainer.cur_nimg)
    assert all(torch.equal(s["step"], b) for s, b in zip(trainer.step.G.opt.state.values(), steps_before, strict=True))


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


# ---------------------------------------------------------------------------- EMA


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


def test_ema_reads_channels_last_weights_without_copying_them(tiny_config: Path, tmp_path: Path) -> None:
    """With train.channels_last G's conv weights are NHWC in memory: the update reads each one as a
    view (reshaping it in NCHW order would copy it first, a kernel per weight), G_ema keeps the
    layout, and the average is the same as the plain one."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.names: set[str] = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            out = func(*args, **(kwargs or {}))
            if isinstance(out, torch.Tensor) and out.numel() > 1:  # not the 0-dim skip flag
                self.names.add(func.overloadpacket.__name__)
            return out

    trainer = make(tiny_config, "train.channels_last=true")
    G, G_ema, ema = trainer.G, trainer.G_ema, trainer.step.ema
    convs = [k for k, p in G.named_parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in G_ema.parameters() if p.dim() == 4)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(torch.randn_like(p))
    before, target = params(G_ema), params(G)
    with Ops() as ops:
        ema.update(G, torch.tensor(0.0), cur_nimg=10_000)
    assert ops.names <= {"detach", "permute", "view", "_unsafe_view", "cat", "lerp", "where"}, ops.names  # views, no clone or copy
    for k, w in params(G_ema).items():
        assert torch.equal(w, before[k].lerp(target[k], 1 - ema.beta(10_000))), k
    # channels_last may change on resume: the weights load into the other layout unchanged
    saved = save_checkpoint(trainer, tmp_path).path
    assert saved is not None
    plain = make(tiny_config)
    restore(plain, saved)
    assert same(params(plain.G_ema), params(G_ema)) and all(p.is_contiguous() for p in plain.G_ema.parameters())


def test_ema_half_life_is_counted_in_images(tiny_config: Path) -> None:
    ema = EMA(torch.nn.Linear(2, 2), half_life_images=1000, images_per_step=100, rampup=0.0)
    assert ema.beta(5000) ** 10 == pytest.approx(0.5)  # ten steps of 100 images halve the weight
    ramped = EMA(torch.nn.Linear(2, 2), half_life_images=1000, images_per_step=100, rampup=0.05)
    assert ramped.beta(2000) == pytest.approx(0.5)  # half-life capped at 0.05 x 2000 = 100 images
    assert EMA(torch.nn.Linear(2, 2), half_life_images=0, images_per_step=100, rampup=0.0).beta(10) == 0.0  # 0: G_ema = G
    # a G step after d_steps D phases has seen d_steps real batches: the half-life counts them all
    trainer = make(tiny_config, "tricks.d_steps=3")
    assert trainer.step.ema.images_per_step == 3 * trainer.cfg.train.batch_size


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
    assert bn_ema.running_mean is not None and bn_ema.running_var is not None and bn_G.running_mean is not None
    first = bn_ema.running_mean.clone(), bn_ema.running_var.clone()
    assert not torch.allclose(first[0], bn_G.running_mean), "G_ema still carries G's statistics"
    trainer.ready_G_ema()  # seeded by images seen: the same statistics again (to rounding: cuDNN is not bitwise repeatable)
    torch.testing.assert_close(bn_ema.running_mean, first[0], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(bn_ema.running_var, first[1], rtol=1e-4, atol=1e-6)
    assert torch.equal(torch.get_rng_state(), rng_before) and torch.equal(trainer.step.latents.generator.get_state(), latent_before)
    assert not trainer.G_ema.training and bn_ema.momentum == bn_G.momentum


# ---------------------------------------------------------------------------- penalties under fp16


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


# ---------------------------------------------------------------------------- the phases, losses and tricks


def test_G_phase_leaves_D_gradients_alone(tiny_config: Path) -> None:
    trainer = make(tiny_config)
    steps(trainer, 1)
    trainer.step.D.opt.zero_grad(set_to_none=True)
    trainer.step.g_phase(trainer.cur_nimg)
    assert all(p.grad is None for p in trainer.D.parameters())
    assert all(p.requires_grad for p in trainer.D.parameters())  # unfrozen again for the D phase
    assert any(p.grad is not None for p in trainer.G.parameters())


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


# ---------------------------------------------------------------------------- precision and compile


def test_bf16_step_runs_and_keeps_fp32_weights(tiny_config: Path) -> None:
    trainer = make(tiny_config, "train.precision=bf16")
    steps(trainer, 2)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in trainer.G.parameters())


def test_auto_precision_is_bf16_only_where_the_hardware_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastgan import hardware
    from fastgan.hardware import resolve_precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"flags": "fpu avx2 avx512f avx512_bf16 amx_bf16"})
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert resolve_precision("auto", cpu) == "bf16"
    # The units are there but the kernels are held below them (how an AVX2-only CPU is reproduced)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert resolve_precision("auto", cpu) == "no"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert resolve_precision("auto", cpu) == "bf16"
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")  # ATEN_CPU_CAPABILITY=avx2
    assert resolve_precision("auto", cpu) == "no"
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"flags": "fpu avx2 fma"})  # bf16 would be emulated: ~20x slower
    assert resolve_precision("auto", cpu) == "no"
    assert resolve_precision("fp16", cpu) == "fp16"  # explicit choices stay

    # A GPU that emulates bf16 (a V100: is_bf16_supported() says yes unless emulation is excluded)
    def emulates_bf16(including_emulation: bool = True) -> bool:
        return including_emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", emulates_bf16)
    assert resolve_precision("auto", torch.device("cuda")) == "no"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # Ampere and later
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"


def test_compiled_step_matches_eager_and_does_not_recompile(tiny_config: Path) -> None:
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager = make(tiny_config)
    compiled = make(tiny_config, "train.compile=default", "train.compile_backend=aot_eager")
    steps(eager, 1)
    steps(compiled, 1)
    for k, v in params(eager.G).items():
        torch.testing.assert_close(params(compiled.G)[k], v, rtol=1e-4, atol=1e-5)
    graphs_after_first = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    steps(compiled, 19)
    # the first step compiles G (no_grad and grad) and D (trainable and frozen); the next 19 add nothing
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs_after_first
    assert graphs_after_first <= 8
    assert not any(k.startswith("_orig_mod.") for k in compiled.G.state_dict())  # checkpoints keep plain keys


def test_g_latents_keep_computes_what_reuse_does_with_one_G_forward_fewer(tiny_config: Path) -> None:
    """The "keep" mode hands the G phase the D phase's own G(z) and graph: the same weights as "reuse"
    after a few steps (G's BatchNorm running statistics aside: they move once per step)."""
    runs = {}
    for mode in ("reuse", "keep"):
        trainer = make(tiny_config, f"tricks.g_latents={mode}", "model.name=tutorial-dcgan", "model.z_dim=8")
        G, calls = trainer.step.G, [0]
        run = G.run

        def counting(
            z: torch.Tensor, labels: torch.Tensor, run: Callable[..., torch.Tensor] = run, calls: list[int] = calls
        ) -> torch.Tensor:
            calls[0] += 1
            return run(z, labels)

        G.run = counting
        steps(trainer, 3)
        runs[mode] = (trainer, calls[0])
    (reuse, reuse_calls), (keep, keep_calls) = runs["reuse"], runs["keep"]
    assert (reuse_calls, keep_calls) == (6, 3)  # G runs once per step, not twice
    for net in ("G", "D", "G_ema"):
        a, b = getattr(reuse, net).state_dict(), getattr(keep, net).state_dict()
        for k in a:
            if "running_" not in k and "num_batches_tracked" not in k:
                torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=f"{net}.{k}")


@pytest.mark.parametrize("extra", ["tricks.d_steps=2", "train.accumulate=2"])
def test_g_latents_keep_refuses_what_it_cannot_hold(tiny_config: Path, extra: str) -> None:
    from fastgan.errors import UsageError

    with pytest.raises(UsageError, match='g_latents = "keep"'):
        make(tiny_config, "tricks.g_latents=keep", extra)
