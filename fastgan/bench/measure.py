"""Measure one rung: build the real trainer, warm up (compile included), count launches, then
time windows, all within the rung's time budget.

Timing brackets whole steps (D phase + G phase + the data they consume), through the one step
function the training loop uses. On CUDA each window ends with a synchronize, so the clock sees
finished work; nothing syncs inside a window (the budget is checked on the host clock only).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate import Accelerator

from fastgan.bench.launches import count_launches
from fastgan.config import Config
from fastgan.data.sources import Source
from fastgan.train.build import Trainer, build_trainer

SLOWER_THAN_BEST = 10  # a rung whose first window is this many times slower than the best is stopped


@dataclass
class RungResult:
    name: str
    images_per_s: float | None = None
    images_per_s_spread: tuple[float, float] | None = None  # min and max over windows
    ms_per_step: float | None = None
    speedup: float | None = None
    mfu: float | None = None
    peak_mem_bytes: int | None = None  # CUDA: max_memory_allocated during this rung; CPU: see mem_note
    mem_note: str = ""
    warmup_s: float | None = None  # first steps, compile time included
    steps_measured: int = 0  # timed steps (the budget or an early stop can cut windows short)
    launches_per_step: int | None = None
    launches_outside_models: int | None = None
    launches_outside_top: list[tuple[str, int]] = field(default_factory=list)
    skipped: str | None = None
    error: str | None = None  # the rung raised: recorded, and the ladder went on
    note: str = ""
    config: dict[str, Any] = field(default_factory=dict)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def flops_per_step(cfg: Config, accelerator: Accelerator, source: Source) -> int:
    """FLOPs of one training step (all processes), counted on an eager fp32 copy of the step."""
    from dataclasses import replace

    from torch.utils.flop_counter import FlopCounterMode

    eager_cfg = replace(cfg, train=replace(cfg.train, compile="off", precision="no"), data=replace(cfg.data, backend="tensor"))
    trainer = build_trainer(eager_cfg, accelerator, source)
    data = iter(trainer.data)
    with FlopCounterMode(display=False) as counter:
        trainer.train_step(data)
    flops = int(counter.get_total_flops()) * accelerator.num_processes
    del trainer, data
    accelerator.free_memory()  # the Accelerator keeps every prepared model otherwise
    return flops


def host_rss_bytes() -> int:
    """Resident memory of this process now (a CPU has no per-rung peak to ask for)."""
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(trainer: Trainer, *, warmup_steps: int, window_steps: int, windows: int, budget_s: float, best_rate: float = 0.0) -> RungResult:
    """Time `windows` windows of `window_steps` steps, stopping at `budget_s` seconds (warm-up
    included) or after the first window when it is SLOWER_THAN_BEST times slower than `best_rate`."""
    device = trainer.accelerator.device
    data = iter(trainer.data)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    notes: list[str] = []
    start = time.perf_counter()
    deadline = start + budget_s
    for i in range(warmup_steps):
        trainer.train_step(data)
        if time.perf_counter() > deadline and i + 1 < warmup_steps:
            notes.append(f"budget reached in warm-up after {i + 1} step(s)")
            break
    sync(device)
    warmup_s = time.perf_counter() - start
    launches = count_launches(lambda: trainer.train_step(data), device)
    images_per_step = trainer.cfg.train.batch_size * trainer.cfg.tricks.d_steps  # global
    rates: list[float] = []
    measured = 0
    for w in range(windows):
        t0, done = time.perf_counter(), 0
        while done < window_steps and (done == 0 or time.perf_counter() < deadline):
            trainer.train_step(data)
            done += 1
        sync(device)
        rates.append(done * images_per_step / (time.perf_counter() - t0))
        measured += done
        if w == 0 and best_rate and rates[0] * SLOWER_THAN_BEST < best_rate:
            notes.append(f"stopped after its first window: over {SLOWER_THAN_BEST}x slower than the best rung so far")
            break
        if time.perf_counter() >= deadline:
            if w + 1 < windows or done < window_steps:
                notes.append(f"time box of {budget_s:.0f} s reached after {measured} timed step(s)")
            break
    median = statistics.median(rates)
    if device.type == "cuda":
        peak, mem_note = int(torch.cuda.max_memory_allocated(device)), "CUDA max_memory_allocated during this rung"
    else:
        peak, mem_note = host_rss_bytes(), "CPU: the process's resident memory after the rung (not a peak)"
    return RungResult(
        name="",
        images_per_s=median,
        images_per_s_spread=(min(rates), max(rates)),
        ms_per_step=1000 * images_per_step / median,
        peak_mem_bytes=peak,
        mem_note=mem_note,
        warmup_s=warmup_s,
        steps_measured=measured,
        launches_per_step=launches.per_step,
        launches_outside_models=launches.outside_models,
        launches_outside_top=launches.outside_by_name,
        note="; ".join(notes),
    )
