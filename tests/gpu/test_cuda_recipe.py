"""Today's recipe on CUDA (issue 17, item 1): R3GAN's nets and relativistic loss, lazy R1/R2
(reg_every = 2, so a lazy step comes early), ADA with p > 0 and a small speed_images, class-
conditional, on a generated 32 px RGB array. Run by `scripts/gpu-check.sh` first
(`pytest -m gpu tests/gpu/test_cuda_recipe.py`), skipped without a GPU. torch 2.11-era APIs only.

For bf16 and fp16, under compile "default" and "reduce-overhead": a lazy step gives the same D
gradients with and without CUDA graphs (the same inductor kernels, so to rounding) and near the
eager ones; a window of steps that holds lazy steps and an ADA adjustment makes no host sync
(`torch.cuda.set_sync_debug_mode("error")`) and compiles nothing new. Then: a CPU checkpoint of
the recipe resumes on the GPU and back; `precision = "auto"` is bf16 here; `g_latents = "reuse"`
under CUDA graphs; one max-autotune run. In order of value: FASTGAN_TEST_BUDGET_S cuts the last.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from fastgan.augment import ADJUST_EVERY, AdaptiveAugment
from tests.gpu.test_cuda_step import record, relative_error, steps_without_a_sync
from tests.support import REPO, make, write_recipe

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

BATCH, REG_EVERY = 32, 2
WARMUP_STEPS = ADJUST_EVERY  # through the first lazy step (2) and the first ADA adjustment (4)
CHECKED_STEPS = ADJUST_EVERY  # lazy steps at 6 and 8, an ADA adjustment at 8


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_recipe(tmp_path_factory.mktemp("recipe"), batch=BATCH, reg_every=REG_EVERY)


def D_grads(trainer: Any) -> torch.Tensor:
    return torch.cat([p.grad.float().flatten() for p in trainer.D.parameters() if p.grad is not None])


def finite_error(a: torch.Tensor, b: torch.Tensor, same_skips: bool = True) -> float:
    """Relative error over the elements finite in both. With `same_skips` (the same kernels, with and
    without CUDA graphs), a skipped fp16 step must have left its infs in both at the same places;
    against eager, rounding may tip one side over fp16's range and not the other."""
    if same_skips:
        assert torch.equal(torch.isfinite(a), torch.isfinite(b)), "non-finite gradients in one and not the other"
    keep = torch.isfinite(a) & torch.isfinite(b)
    return relative_error(a[keep], b[keep]) if keep.any() else 0.0


def step_all(runs: list[Any], iters: dict[int, Any], step: int) -> None:
    """One step of each trainer, each from the same global RNG state (ADA's draws come from it)."""
    for t in runs:
        torch.manual_seed(1000 + step)
        t.train_step(iters[id(t)])


def check_recipe(config: Path, precision: str, *extra: str, name: str) -> None:
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    overrides = (f"train.precision={precision}", *extra)
    graphs = make(config, *overrides, "train.compile=reduce-overhead")
    default = make(config, *overrides, "train.compile=default")
    eager = make(config, *overrides)
    runs = [graphs, default, eager]
    iters = {id(t): iter(t.data) for t in runs}
    start = time.perf_counter()
    step_all(runs, iters, 1)
    step_all(runs, iters, 2)  # its D step is the first lazy R1/R2 step: D's gradients are the lazy pass's
    torch.cuda.synchronize()
    lazy_graphs_vs_default = finite_error(D_grads(graphs), D_grads(default))
    lazy_vs_eager = finite_error(D_grads(default), D_grads(eager), same_skips=False)
    assert lazy_graphs_vs_default < 1e-2, f"a lazy step under CUDA graphs differs from the same kernels by {lazy_graphs_vs_default:.3g}"
    assert lazy_vs_eager < (0.2 if precision != "no" else 0.05), f"a compiled lazy step differs from eager by {lazy_vs_eager:.3g}"
    for step in range(3, WARMUP_STEPS + 1):
        step_all(runs, iters, step)
    torch.cuda.synchronize()
    warmup_s = time.perf_counter() - start
    ada = graphs.step.augment
    assert isinstance(ada, AdaptiveAugment)
    p_before = float(ada.p)  # a sync, outside the checked window
    for trainer in (graphs, default):
        graphs_after_warmup = torch._dynamo.utils.counters["stats"]["unique_graphs"]
        data = iters[id(trainer)]
        steps_without_a_sync(trainer, data, CHECKED_STEPS)  # lazy steps at D steps 6 and 8, ADA moves p after D step 8
        assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs_after_warmup, "recompiled after a lazy step"
        stats = trainer.step.stats.read(lambda x: x, lambda x: x)
        assert all(math.isfinite(stats[k]) for k in ("loss_D", "loss_G", "penalty_reg_total")), stats
        assert stats["penalty_reg_total"] > 0
    assert float(ada.p) != p_before, "ADA's p did not move in the checked window"
    record(test=name, precision=precision, warmup_s=round(warmup_s, 2), lazy_grad_error_graphs_vs_default=lazy_graphs_vs_default,
           lazy_grad_error_vs_eager=lazy_vs_eager, graphs=torch._dynamo.utils.counters["stats"]["unique_graphs"],
           ada_p=float(ada.p))  # fmt: skip


def test_recipe_bf16_lazy_steps_and_ada_under_both_compile_modes(recipe: Path) -> None:
    check_recipe(recipe, "bf16", name="recipe/bf16")


def train(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "fastgan", "train", *args], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_a_cpu_checkpoint_of_the_recipe_resumes_on_the_gpu_and_back(recipe: Path, tmp_path: Path) -> None:
    from fastgan.run import checkpoint as ckpt

    out = tmp_path / "run"
    train(str(recipe), "--out", str(out), "--set", "train.cpu=true", "--set", "train.precision=bf16", "--set", "train.total_images=64")
    on_gpu = train("--resume", str(out), "--set", "train.cpu=false", "--set", "train.total_images=128")
    assert any("notice:" in line and "re-seeded" in line for line in on_gpu.stderr.splitlines()), on_gpu.stderr[-2000:]
    train("--resume", str(out), "--set", "train.cpu=true", "--set", "train.total_images=192")
    for nimg, device in ((128, "cuda"), (192, "cpu")):
        state = torch.load(out / "checkpoints" / ckpt.checkpoint_name(nimg) / "state.pt", map_location="cpu", weights_only=True)
        assert state["device_type"] == device
        for net in ("G", "D", "G_ema"):
            assert all(torch.isfinite(v).all() for v in state[net].values() if v.is_floating_point()), (nimg, net)


def test_recipe_fp16_lazy_steps_and_ada_under_both_compile_modes(recipe: Path) -> None:
    check_recipe(recipe, "fp16", name="recipe/fp16")


def test_precision_auto_is_bf16_on_this_gpu(recipe: Path) -> None:
    from fastgan.hardware import resolve_precision

    assert resolve_precision("auto", torch.device("cuda", 0)) == "bf16"
    trainer = make(recipe, "train.precision=auto")
    z, labels = trainer.step.latents.for_D()
    with torch.no_grad(), trainer.step.autocast():
        assert trainer.step.G.run(z, labels).dtype == torch.bfloat16  # autocast really is bf16


def test_g_latents_reuse_under_cuda_graphs(recipe: Path) -> None:
    import torch._dynamo

    torch._dynamo.reset()
    graphs = make(recipe, "train.precision=bf16", "tricks.g_latents=reuse", "train.compile=reduce-overhead")
    default = make(recipe, "train.precision=bf16", "tricks.g_latents=reuse", "train.compile=default")
    iters = {id(t): iter(t.data) for t in (graphs, default)}
    for step in range(1, 4):  # warm-up, record, replay
        step_all([graphs, default], iters, step)
    torch.cuda.synchronize()
    g = [torch.cat([p.grad.float().flatten() for p in t.G.parameters() if p.grad is not None]) for t in (graphs, default)]
    error = finite_error(g[0], g[1])
    assert error < 1e-2, f"G's gradients with reused latents differ under CUDA graphs by {error:.3g}"
    record(test="recipe/reuse/reduce-overhead", grad_error_graphs_vs_default=error)


MOVING = [  # every scheduled value changes at every step of the checked window
    *(f"schedule.{v}.{k}" for v in ("lr_G", "lr_D") for k in ("start=1e-3", "end=1e-4", "length_images=4000")),
    *(f"schedule.{v}.{k}" for v in ("beta2_D", "r1_gamma", "r2_gamma", "ema_halflife_images", "augment_p")
      for k in ("start=0.5", "end=0.1", "length_images=4000")),
]  # fmt: skip


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_scheduled_values_move_without_a_sync_or_a_recompile(recipe: Path, mode: str) -> None:
    """[schedule] sets lr/betas (Adam's floats), gamma (the eager penalty's float), the EMA decay and
    ADA's ceiling on p (a device tensor, filled in place) before each step: under CUDA graphs too,
    no host sync and no new graph once warm."""
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    trainer = make(recipe, "train.precision=bf16", f"train.compile={mode}", *MOVING)
    data = iter(trainer.data)
    for step in range(1, WARMUP_STEPS + 1):
        torch.manual_seed(1000 + step)
        trainer.train_step(data)
    torch.cuda.synchronize()
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    before = trainer.schedules.values(trainer.cur_nimg)
    steps_without_a_sync(trainer, data, CHECKED_STEPS)
    after = trainer.schedules.values(trainer.cur_nimg)
    assert all(after[k] != v for k, v in before.items()), (before, after)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs, "a moving scheduled value recompiled the step"
    record(test=f"recipe/schedules/{mode}", graphs=graphs)


@pytest.mark.parametrize("extra", [("train.accumulate=2",), ("tricks.g_latents=keep",)])
def test_accumulation_and_the_kept_G_forward_match_eager_when_compiled(recipe: Path, extra: tuple[str, ...]) -> None:
    """Two micro-batches per phase, or the D phase's G forward kept for the G phase, compiled
    ("default") against eager: G's gradients agree to bf16 rounding."""
    import torch._dynamo

    torch._dynamo.reset()
    compiled = make(recipe, "train.precision=bf16", "train.compile=default", *extra)
    eager = make(recipe, "train.precision=bf16", *extra)
    iters = {id(t): iter(t.data) for t in (compiled, eager)}
    for step in range(1, 4):
        step_all([compiled, eager], iters, step)
    torch.cuda.synchronize()
    g = [torch.cat([p.grad.float().flatten() for p in t.G.parameters() if p.grad is not None]) for t in (compiled, eager)]
    error = finite_error(g[0], g[1], same_skips=False)
    assert error < 0.2, f"G's gradients with {extra} differ compiled vs eager by {error:.3g}"
    record(test=f"recipe/{'/'.join(extra)}/default", grad_error_vs_eager=error)


def test_one_max_autotune_run_of_the_recipe(recipe: Path) -> None:
    import torch._dynamo

    torch._dynamo.reset()
    trainer = make(recipe, "train.precision=bf16", "train.compile=max-autotune")
    data = iter(trainer.data)
    start = time.perf_counter()
    for _ in range(3):
        trainer.train_step(data)
    torch.cuda.synchronize()
    stats = trainer.step.stats.read(lambda x: x, lambda x: x)
    assert all(math.isfinite(stats[k]) for k in ("loss_D", "loss_G")), stats
    record(test="recipe/max-autotune", warmup_s=round(time.perf_counter() - start, 2))
