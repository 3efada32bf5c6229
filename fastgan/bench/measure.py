"""Measure one rung: build the real trainer, warm up (compile included), count launches, then
time windows, all within the rung's time budget.

Timing brackets whole steps (D phase + G phase + the data they consume), through the one step
function the training loop uses. On CUDA each window ends with a synchronize, so the clock sees
finished work; nothing syncs inside a window (the budget is checked on the host clock only).

Lazy R1/R2 (loss.reg_every > 1) adds an eager D step every `reg_every` D steps: the FLOP count
adds that pass divided by `reg_every`, warm-up lasts until the first lazy step has run (its
first call is slow, and under compile it must not land in a timed window), and each window is a
whole number of regularisation periods, so every window holds its share of lazy steps.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate import Accelerator

from fastgan.bench.launches import count_launches
from fastgan.config import Config
from fastgan.data.contract import Batch
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


@dataclass(frozen=True)
class StepFlops:
    """FLOPs of one training step, all processes, counted on an eager fp32 copy of the step."""

    plain_step: int  # a step whose D phases run no lazy R1/R2 pass
    lazy_pass: int  # one lazy R1/R2 pass (0 without lazy regularisation)
    reg_every: int  # D steps per lazy pass (1 without lazy regularisation)
    d_steps: int  # D phases per step

    @property
    def per_step(self) -> int:
        """What a step costs on average: the lazy pass is due once every reg_every D steps."""
        return self.plain_step + round(self.d_steps * self.lazy_pass / self.reg_every)


def count_flops(cfg: Config, accelerator: Accelerator, source: Source) -> StepFlops:
    """Count one plain step, and when R1/R2 are lazy one step that runs the lazy pass, under
    FlopCounterMode (an eager fp32 copy: compile and autocast do not change the count)."""
    from dataclasses import replace

    from torch.utils.flop_counter import FlopCounterMode

    eager_cfg = replace(cfg, train=replace(cfg.train, compile="off", precision="no"), data=replace(cfg.data, backend="tensor"))
    trainer = build_trainer(eager_cfg, accelerator, source)
    data = iter(trainer.data)

    def one_step(trainer: Trainer, data: Iterator[Batch]) -> int:
        counter = FlopCounterMode(display=False)
        if hasattr(counter, "mod_tracker"):  # its module hooks break autograd.grad (the R1/R2 pass): count globally
            counter.mod_tracker = _GlobalOnly()  # type: ignore[assignment]
        with counter:
            trainer.train_step(data)
        return int(counter.get_total_flops()) * accelerator.num_processes

    plain = one_step(trainer, data)  # from 0 images seen: the first D step is never due (reg_every > 1)
    plan, lazy = trainer.step.reg, 0
    if plan.lazy:
        trainer.cur_nimg = (plan.every - 1) * trainer.step.images_per_d_step  # the next step's first D phase is due
        lazy = one_step(trainer, data) - plain
    flops = StepFlops(plain, lazy, plan.every, trainer.cfg.tricks.d_steps)
    del trainer, data
    accelerator.free_memory()  # the Accelerator keeps every prepared model otherwise
    return flops


class _GlobalOnly:
    """Stands in for FlopCounterMode's ModuleTracker: every FLOP counts under "Global" only. The
    tracker's backward hooks raise inside `autograd.grad` ("A leaf node was passed to
    _will_engine_execute_node"), which every R1/R2 pass calls (torch 2.14)."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *args: object) -> None:
        return None


def flops_per_step(cfg: Config, accelerator: Accelerator, source: Source) -> int:
    """FLOPs of an average training step (all processes), lazy R1/R2 amortised over reg_every."""
    return count_flops(cfg, accelerator, source).per_step


def steps_to_first_lazy(trainer: Trainer) -> int:
    """Steps from the trainer's images seen until one has run a lazy R1/R2 pass (0: none configured)."""
    plan, step = trainer.step.reg, trainer.step
    if not plan.lazy:
        return 0
    done = (trainer.cur_nimg // step.images_per_d_step) % plan.every  # D steps into the current period
    return math.ceil((plan.every - done) / step.d_steps)


def whole_periods(window_steps: int, trainer: Trainer) -> int:
    """`window_steps` rounded up to whole lazy-regularisation periods (steps in which the lazy
    pass recurs), so that every timed window holds the same share of lazy steps."""
    plan, d_steps = trainer.step.reg, trainer.step.d_steps
    if not plan.lazy:
        return window_steps
    period = math.lcm(plan.every, d_steps) // d_steps
    return math.ceil(window_steps / period) * period


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
    lazy_first = steps_to_first_lazy(trainer)
    if lazy_first > warmup_steps:
        notes.append(f"warm-up of {lazy_first} steps: through the first lazy R1/R2 step")
        warmup_steps = lazy_first
    if whole_periods(window_steps, trainer) != window_steps:
        window_steps = whole_periods(window_steps, trainer)
        notes.append(f"windows of {window_steps} steps: whole R1/R2 periods")
    start = time.perf_counter()
    deadline = start + budget_s
    for i in range(warmup_steps):
        trainer.train_step(data)
        if time.perf_counter() > deadline and lazy_first <= i + 1 < warmup_steps:  # never before the first lazy step
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
