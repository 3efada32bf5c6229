"""Every CUDA path of the step, a few steps each: run by `scripts/gpu-check.sh` on a GPU
(`pytest -m gpu`), skipped without one. Only torch 2.11-era APIs: the GPU machine has 2.11.

For each precision (no, bf16, fp16), eager and under CUDA graphs (compile mode
reduce-overhead), with both D batch layouts: losses are finite, compiled matches eager, the D
and G phases make no host sync (`torch.cuda.set_sync_debug_mode("error")`), and nothing
recompiles after warm-up. Cases run in order of value, so a time budget
(FASTGAN_TEST_BUDGET_S) cuts the least valuable ones first. Compile times, data-fetch syncs
and launch counts go to FASTGAN_GPU_REPORT (JSON lines) for the check's summary.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.support import make

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

WARMUP_STEPS = 3  # reduce-overhead: step 1 warms up, step 2 records the graphs, step 3 replays them
CHECKED_STEPS = 3


def record(**values: Any) -> None:
    path = os.environ.get("FASTGAN_GPU_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(values) + "\n")


def grads(trainer: Any) -> torch.Tensor:
    return torch.cat([p.grad.float().flatten() for m in (trainer.G, trainer.D) for p in m.parameters() if p.grad is not None])


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp_min(1e-12))


def steps_without_a_sync(trainer: Any, data: Any, n: int) -> None:
    """`n` steps of batches fetched beforehand, with any host sync an error (the data fetch is
    checked on its own)."""
    batches = [next(data) for _ in range(n)]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        it = iter(batches)
        for _ in range(n):
            trainer.train_step(it)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.fixture
def gpu_config(tmp_path: Path, tiny_npy: Path) -> Path:
    cfg = tmp_path / "gpu.toml"
    cfg.write_text(f'[model]\nname = "dcgan28"\nwidth = 16\n\n[data]\nsource = "npy:{tiny_npy}"\n\n[train]\nbatch_size = 32\n')
    return cfg


@pytest.fixture
def gpu_config_64(tmp_path: Path) -> Path:
    images = np.random.default_rng(0).integers(0, 256, size=(128, 3, 64, 64), dtype=np.uint8)
    np.save(tmp_path / "rgb64.npy", images)
    cfg = tmp_path / "gpu64.toml"
    cfg.write_text(
        f'[model]\nname = "dcgan"\nresolution = 64\nchannels = 3\nwidth = 32\n\n[data]\nsource = "npy:{tmp_path / "rgb64.npy"}"\n\n'
        "[train]\nbatch_size = 32\n"
    )
    return cfg


def check_path(config: Path, precision: str, compile_mode: str, d_batches: str, name: str) -> None:
    """The whole contract for one configuration (see the module docstring).

    Numerics: after one step, compiled gradients equal eager ones within a tolerance for the
    precision (fused kernels round differently). CUDA graphs: after the graphs were recorded
    and replayed, reduce-overhead equals the same inductor kernels run without graphs (compile
    mode default) to rounding, which a replay that read overwritten memory could not.
    """
    import torch._dynamo

    from fastgan.bench.launches import count_launches

    torch._dynamo.reset()  # a fresh cache per configuration: no cache-limit fallbacks to eager
    torch._dynamo.utils.counters.clear()
    overrides = (f"train.precision={precision}", f"tricks.d_batches={d_batches}")
    eager = make(config, *overrides)
    trainer = make(config, *overrides, f"train.compile={compile_mode}") if compile_mode != "off" else eager
    graphless = make(config, *overrides, "train.compile=default") if compile_mode == "reduce-overhead" else None
    runs = [trainer] + ([eager] if eager is not trainer else []) + ([graphless] if graphless is not None else [])
    iters = {id(t): iter(t.data) for t in runs}
    start = time.perf_counter()
    for t in runs:
        t.train_step(iters[id(t)])
    torch.cuda.synchronize()
    first_s = time.perf_counter() - start
    error_vs_eager = relative_error(grads(trainer), grads(eager)) if trainer is not eager else 0.0
    assert error_vs_eager < (0.15 if precision == "bf16" else 0.05), f"compiled gradients differ from eager by {error_vs_eager:.3g}"
    for _ in range(WARMUP_STEPS - 1):  # reduce-overhead: record the graphs, then replay them
        for t in runs:
            t.train_step(iters[id(t)])
    torch.cuda.synchronize()
    warmup_s = time.perf_counter() - start
    error_graphs = relative_error(grads(trainer), grads(graphless)) if graphless is not None else 0.0
    assert error_graphs < 1e-2, f"CUDA-graph replays differ from the same kernels without graphs by {error_graphs:.3g}"
    stats = trainer.step.stats.read(lambda x: x, lambda x: x)
    assert all(math.isfinite(stats[k]) for k in ("loss_D", "loss_G", "gnorm_D", "gnorm_G")), stats
    data = iters[id(trainer)]
    graphs_after_warmup = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    steps_without_a_sync(trainer, data, CHECKED_STEPS)  # the data fetch is checked on its own (below)
    stats = trainer.step.stats.read(lambda x: x, lambda x: x)
    assert all(math.isfinite(stats[k]) for k in ("loss_D", "loss_G")), stats
    assert stats["skipped_D_total"] == 0 or precision == "fp16"  # fp16 may back its scale off early
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs_after_warmup, "recompiled after warm-up"
    launches = count_launches(lambda: trainer.train_step(data), torch.device("cuda"))
    if compile_mode == "reduce-overhead":
        assert launches.graph_launches > 0, "reduce-overhead replayed no CUDA graph (were graphs skipped?)"
    record(test=name, precision=precision, compile=compile_mode, d_batches=d_batches, first_step_s=round(first_s, 2),
           warmup_s=round(warmup_s, 2), grad_error_vs_eager=error_vs_eager, grad_error_graphs_vs_none=error_graphs,
           graphs=graphs_after_warmup, launches_per_step=launches.per_step, launches_outside_models=launches.outside_models,
           graph_launches=launches.graph_launches)  # fmt: skip


# In order of value: the crash the issue reported first, then every precision eagerly, then
# CUDA graphs per precision and layout, then the rest of the matrix.


def test_cuda_graphs_fp32_separate_batches(gpu_config: Path) -> None:
    check_path(gpu_config, "no", "reduce-overhead", "separate", "reduce-overhead/no/separate")


@pytest.mark.parametrize("precision", ["no", "bf16", "fp16"])
@pytest.mark.parametrize("d_batches", ["separate", "concat"])
def test_eager(gpu_config: Path, precision: str, d_batches: str) -> None:
    check_path(gpu_config, precision, "off", d_batches, f"eager/{precision}/{d_batches}")


def test_cuda_graphs_bf16_concat(gpu_config: Path) -> None:
    check_path(gpu_config, "bf16", "reduce-overhead", "concat", "reduce-overhead/bf16/concat")


def test_cuda_graphs_fp16_separate(gpu_config: Path) -> None:
    check_path(gpu_config, "fp16", "reduce-overhead", "separate", "reduce-overhead/fp16/separate")


def test_fp16_overflow_in_one_network_skips_only_that_network_on_cuda(tiny_config: Path) -> None:
    from tests.unit.test_step import test_fp16_overflow_in_D_skips_only_D, test_fp16_overflow_in_G_skips_G_and_its_EMA_update

    test_fp16_overflow_in_D_skips_only_D(tiny_config)
    test_fp16_overflow_in_G_skips_G_and_its_EMA_update(tiny_config)


@pytest.mark.parametrize("precision", ["no", "bf16", "fp16"])
def test_a_non_finite_step_is_skipped_on_cuda(tiny_config: Path, precision: str) -> None:
    from tests.unit.test_step import test_a_non_finite_G_step_moves_neither_G_nor_G_ema

    test_a_non_finite_G_step_moves_neither_G_nor_G_ema(tiny_config, precision)


def test_fp16_r1_matches_fp32_on_cuda() -> None:
    from tests.unit.test_step import r1_value

    assert r1_value("fp16", "cuda") == pytest.approx(r1_value("no", "cuda"), rel=2e-2)


def test_compile_default(gpu_config: Path) -> None:
    check_path(gpu_config, "no", "default", "separate", "default/no/separate")


def test_cuda_graphs_dcgan64_bf16(gpu_config_64: Path) -> None:
    check_path(gpu_config_64, "bf16", "reduce-overhead", "separate", "reduce-overhead/bf16/separate/dcgan64")


def test_G_ema_batchnorm_recalibration_on_cuda(tiny_config: Path) -> None:
    from tests.unit.test_step import test_G_ema_gets_batchnorm_statistics_of_its_own_weights

    test_G_ema_gets_batchnorm_statistics_of_its_own_weights(tiny_config)


@pytest.mark.parametrize("backend", ["tensor", "torchvision"])
def test_data_fetch_syncs_are_reported(tiny_config: Path, backend: str) -> None:
    """Not a failure when the fetch syncs: the number per step goes into the check's summary."""
    trainer = make(tiny_config, f"data.backend={backend}", "data.num_workers=2")
    data = iter(trainer.data)
    next(data)  # the first fetch starts workers and copies the epoch's indices
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(5):
                images, labels = next(data)
                assert images.is_cuda and labels.is_cuda and images.dtype == torch.uint8
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [str(w.message) for w in caught if "synchroniz" in str(w.message)]
    record(test=f"data-fetch/{backend}", syncs_per_fetch=len(syncs) / 5, first=syncs[:1])


@pytest.mark.parametrize(("precision", "d_batches"), [("no", "concat"), ("bf16", "separate"), ("fp16", "concat")])
def test_cuda_graphs_rest_of_matrix(gpu_config: Path, precision: str, d_batches: str) -> None:
    check_path(gpu_config, precision, "reduce-overhead", d_batches, f"reduce-overhead/{precision}/{d_batches}")
