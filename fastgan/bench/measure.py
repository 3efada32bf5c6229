"""Measure one rung: build the real trainer, warm up (compile included), then time windows.

Timing brackets whole steps (D phase + G phase + the data they consume). On CUDA each window
ends with a synchronize, so the clock sees finished work; nothing syncs inside a window.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from accelerate import Accelerator

from fastgan.config import Config
from fastgan.data.sources import Source
from fastgan.engine.build import Trainer, build_trainer


@dataclass
class RungResult:
    name: str
    images_per_s: float | None = None
    images_per_s_spread: tuple[float, float] | None = None  # min and max over windows
    ms_per_step: float | None = None
    speedup: float | None = None
    mfu: float | None = None
    peak_mem_bytes: int | None = None
    warmup_s: float | None = None  # first steps, compile time included
    skipped: str | None = None
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
    return int(counter.get_total_flops()) * accelerator.num_processes


def host_rss_bytes() -> int:
    """Resident memory of this process (the CPU's stand-in for peak device memory)."""
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(trainer: Trainer, *, warmup_steps: int, window_steps: int, windows: int) -> RungResult:
    device = trainer.accelerator.device
    data = iter(trainer.data)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(warmup_steps):
        trainer.train_step(data)
    sync(device)
    warmup_s = time.perf_counter() - start
    rates = []
    images_per_step = trainer.cfg.train.batch_size * trainer.cfg.tricks.d_steps  # global
    for _ in range(windows):
        t0 = time.perf_counter()
        for _ in range(window_steps):
            trainer.train_step(data)
        sync(device)
        rates.append(window_steps * images_per_step / (time.perf_counter() - t0))
    median = statistics.median(rates)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else host_rss_bytes()
    return RungResult(
        name="",
        images_per_s=median,
        images_per_s_spread=(min(rates), max(rates)),
        ms_per_step=1000 * images_per_step / median,
        peak_mem_bytes=int(peak),
        warmup_s=warmup_s,
    )
