"""Lazy R1/R2 (fastgan.train.lazy_reg) and the relativistic G phase, in process."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from fastgan.losses.plan import adam_for_lazy
from fastgan.run.resume import restore, save_checkpoint
from fastgan.train.lazy_reg import LazyRegularizer
from tests.support import make, params, steps

RPGAN = ("loss.name=rpgan", "loss.r1_gamma=1.0", "loss.r2_gamma=1.0")


def test_adam_is_adjusted_by_r_over_r_plus_1(tiny_config: Path) -> None:
    lr, betas = adam_for_lazy(2e-3, (0.0, 0.99), every=16)
    c = 16 / 17
    assert lr == pytest.approx(2e-3 * c) and betas == pytest.approx((0.0, 0.99**c))
    trainer = make(tiny_config, *RPGAN, "loss.reg_every=4", "optim.D.lr=1e-3", "optim.D.betas=[0.5, 0.99]")
    group = trainer.step.D.opt.param_groups[0]
    assert group["lr"] == pytest.approx(1e-3 * 0.8) and group["betas"] == pytest.approx((0.5**0.8, 0.99**0.8))
    assert trainer.step.G.opt.param_groups[0]["lr"] == pytest.approx(2e-4)  # G has no lazy penalty: unchanged
    plain = make(tiny_config, *RPGAN, "loss.reg_every=1")
    assert plain.step.D.opt.param_groups[0]["lr"] == pytest.approx(2e-4)  # per-step penalties: unchanged


def test_resume_keeps_the_lazy_adjustment(tiny_config: Path, tmp_path: Path) -> None:
    """restore() re-applies the config's optimizer settings (so --set on resume works): D's must
    come back adjusted for lazy R1/R2, not as the plain config values."""
    overrides = (*RPGAN, "loss.reg_every=4", "optim.D.lr=1e-3", "optim.D.betas=[0.5, 0.99]")
    trainer = make(tiny_config, *overrides)
    steps(trainer, 2)
    saved = save_checkpoint(trainer, tmp_path)
    assert saved.path is not None
    resumed = make(tiny_config, *overrides)
    restore(resumed, saved.path)
    group = resumed.step.D.opt.param_groups[0]
    assert group["lr"] == pytest.approx(1e-3 * 0.8) and group["betas"] == pytest.approx((0.5**0.8, 0.99**0.8))


def test_lazy_step_runs_every_r_D_steps_on_the_penalty_times_r(tiny_config: Path) -> None:
    trainer = make(tiny_config, *RPGAN, "loss.reg_every=4")
    reg = trainer.step.regularize
    assert isinstance(reg, LazyRegularizer) and trainer.step.reg.in_step == ()  # R1/R2 left the main D loss
    seen: list[torch.Tensor] = []
    original = trainer.step.D.backward_step

    def spy(loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        seen.append(loss.detach().clone())
        return original(loss)

    trainer.step.D.backward_step = spy  # type: ignore[method-assign]
    steps(trainer, 8)
    assert len(seen) == 8 + 2  # 8 main D steps, and a penalty step after the 4th and the 8th
    stats = trainer.step.stats.read(lambda x: x, lambda x: x)
    assert stats["penalty_reg_total"] > 0
    # the penalty steps' losses are the penalties times reg_every (steps 5 and 10 in order)
    assert (seen[4] + seen[9]).item() == pytest.approx(4 * stats["penalty_reg_total"], rel=1e-5)


def test_lazy_and_per_step_penalties_match_on_a_penalty_only_step(tiny_config: Path) -> None:
    """The lazy pass differentiates the same R1 + R2 as the per-step path would (x reg_every)."""
    lazy = make(tiny_config, *RPGAN, "loss.reg_every=2")
    s = lazy.step
    real_img, real_labels = next(iter(lazy.data))
    batch = s.d_phase(real_img, real_labels, 0.0)
    weights = [p for p in lazy.D.parameters() if p.ndim == 4]  # the conv weights: every one shapes the input gradient
    grads: list[tuple[torch.Tensor, ...]] = []
    s.D.backward_step = lambda loss: (grads.append(torch.autograd.grad(loss, weights)), (s.zero, torch.zeros(2)))[1]  # type: ignore[method-assign,func-returns-value]
    s.regularize(2 * lazy.cfg.train.batch_size, batch)  # due: the 2nd D step
    assert len(grads) == 1
    # by hand: the same penalties on the same inputs, through the same eager D
    real = batch.real.detach().requires_grad_(True)
    gen = batch.gen.detach().requires_grad_(True)
    r1 = torch.autograd.grad(lazy.D(real, batch.real_labels).sum(), real, create_graph=True)[0].square().flatten(1).sum(1).mean()
    r2 = torch.autograd.grad(lazy.D(gen, batch.gen_labels).sum(), gen, create_graph=True)[0].square().flatten(1).sum(1).mean()
    expected = torch.autograd.grad(2 * 0.5 * (r1 + r2), weights)
    for have, want in zip(grads[0], expected, strict=True):
        torch.testing.assert_close(have, want, rtol=1e-4, atol=1e-6)


def test_relativistic_G_phase_scores_the_D_phase_real_batch(tiny_config: Path) -> None:
    trainer = make(tiny_config, *RPGAN)
    s = trainer.step
    real_img, real_labels = next(iter(trainer.data))
    s.d_phase(real_img, real_labels, 0.0)
    assert s.last_real is not None and s.last_real[0] is real_img  # no new batch: images seen do not change
    got: list[tuple[torch.Tensor, torch.Tensor]] = []
    g_loss = s.objective.g
    s.objective = dataclasses.replace(
        s.objective,
        g=lambda gen_logits, real_logits: (got.append((gen_logits, real_logits)), g_loss(gen_logits, real_logits))[1],  # type: ignore[func-returns-value]
    )
    s.g_phase(trainer.cur_nimg)
    with torch.no_grad():
        expected = trainer.D(real_img.float() / 127.5 - 1, real_labels)
    torch.testing.assert_close(got[0][1].float(), expected, rtol=1e-4, atol=1e-5)
    assert not got[0][1].requires_grad  # D(x) is a constant for G


def test_compiled_rpgan_with_lazy_r1_r2_matches_eager(tiny_config: Path) -> None:
    import torch._dynamo

    torch._dynamo.reset()
    overrides = (*RPGAN, "loss.reg_every=2")
    eager = make(tiny_config, *overrides)
    compiled = make(tiny_config, *overrides, "train.compile=default", "train.compile_backend=aot_eager")
    steps(eager, 2)  # the 2nd D step is followed by the eager penalty step
    steps(compiled, 2)
    for net in ("G", "D"):
        want, have = params(getattr(eager, net)), params(getattr(compiled, net))
        for k, v in want.items():
            torch.testing.assert_close(have[k], v, rtol=1e-4, atol=1e-5)
    e, c = eager.step.stats.read(lambda x: x, lambda x: x), compiled.step.stats.read(lambda x: x, lambda x: x)
    assert c["penalty_reg_total"] == pytest.approx(e["penalty_reg_total"], rel=1e-4) and e["penalty_reg_total"] > 0


def test_the_recipe_compiles_once_through_lazy_steps_and_ada_adjustments(tmp_path: Path) -> None:
    """The CPU half of tests/gpu/test_cuda_recipe.py: r3gan + rpgan + lazy R1/R2 + ADA compiled
    (aot_eager) gives the eager lazy-step gradients, and after a warm-up through the first lazy step
    and ADA adjustment, more of both compile nothing new."""
    import torch._dynamo

    from fastgan.augment import ADJUST_EVERY, AdaptiveAugment
    from tests.support import write_recipe

    recipe = write_recipe(tmp_path, batch=8, width=16)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    eager = make(recipe)
    compiled = make(recipe, "train.compile=default", "train.compile_backend=aot_eager")
    iters = {id(t): iter(t.data) for t in (eager, compiled)}
    for step in range(1, ADJUST_EVERY + 1):  # the 2nd D step is lazy; ADA adjusts after the 4th
        for t in (eager, compiled):
            torch.manual_seed(step)  # ADA's draws come from the global generator
            t.train_step(iters[id(t)])
        if step == 2:
            want, have = (torch.cat([p.grad.flatten() for p in t.D.parameters() if p.grad is not None]) for t in (eager, compiled))
            torch.testing.assert_close(have, want, rtol=1e-3, atol=1e-5)  # the lazy pass's gradients
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    ada = compiled.step.augment
    assert isinstance(ada, AdaptiveAugment)
    p_before = float(ada.p)
    for _ in range(ADJUST_EVERY):  # lazy steps at 6 and 8, an ADA adjustment after 8
        compiled.train_step(iters[id(compiled)])
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs, "recompiled after a lazy step or an ADA adjustment"
    assert float(ada.p) != p_before
    assert compiled.step.stats.read(lambda x: x, lambda x: x)["penalty_reg_total"] > 0
