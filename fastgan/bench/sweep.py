"""Measuring a list of configurations one after the other, each time-boxed, the whole list under
one budget: what `fastgan bench --grid` (fastgan.bench.grid) and `--batch A,B,...`
(fastgan.bench.batches) share.

A cell's time box is soft and hard. Soft: fastgan.bench.measure stops timing at the box (checked
between steps). Hard: a compile that is still running at twice the box (max-autotune, say) is
interrupted by a SIGALRM in the main thread and the cell is recorded with that error. A cell
that raises is recorded with its error and the sweep goes on. Cells that would start after the
budget are listed as "not run (budget)". A SIGINT (the GPU check's first signal at its stage
budget) records the cell it arrived in, lists the rest as not run, writes the partial result,
and stops with exit code 130. The partial result is rewritten after every cell.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from fastgan.config import Config, load_config, to_dict
from fastgan.errors import Stopped, UsageError
from fastgan.validate import validate

HARD_BOX_FACTOR = 2.0  # a cell still busy at this multiple of its time box is interrupted
MIN_CELL_S = 3.0  # a cell gets at least this much of the budget, or is not run


class CellTimeout(BaseException):
    """Raised by the SIGALRM of a cell's hard time box (a BaseException: compile code catches Exception)."""


@contextlib.contextmanager
def hard_time_box(seconds: float) -> Iterator[None]:
    """Interrupt the body with CellTimeout after `seconds` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread() or seconds <= 0:
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> None:
        raise CellTimeout(f"time box: still running after {seconds:.0f} s (compile or warm-up), interrupted")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Cell:
    name: str
    overrides: tuple[str, ...]  # `--set` strings on top of the command line's
    why_not: Callable[[Config, Any], str | None] = lambda cfg, device: None
    note: str = ""


@dataclass
class Sweep:
    """The shared state of one sweep: the accelerator and data, the budget, what was measured."""

    config: Path
    base: tuple[str, ...]
    steps: int
    windows: int
    warmup: int
    cell_seconds: float
    budget_s: float | None
    accelerator: Any
    source: Any
    meta: dict[str, Any]
    results: list[Any] = field(default_factory=list)
    start: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return float("inf") if self.budget_s is None else self.budget_s - (time.monotonic() - self.start)

    def say(self, line: str) -> None:
        if self.accelerator.is_main_process:
            print(line, file=sys.stderr)


def open_sweep(config: Path, cfg: Config, base: tuple[str, ...], *, steps: int, windows: int, warmup: int,
               cell_seconds: float, budget_s: float | None, kind: str) -> Sweep:  # fmt: skip
    """The accelerator, the data source and the result's header, shared by every cell."""
    from fastgan.bench.launches import enable_cpu_kernel_records
    from fastgan.bench.results import header
    from fastgan.data.sources import open_source
    from fastgan.train.setup import make_accelerator

    enable_cpu_kernel_records()  # before anything compiles: inductor's CPU kernels show in the launch count
    accelerator = make_accelerator(cfg)
    source = open_source(cfg.data, cfg.model.channels, cfg.model.resolution)
    meta: dict[str, Any] = {
        "kind": kind,
        **header(config, cfg, accelerator, steps=steps, windows=windows, warmup=warmup),
        "loadavg_before": _loadavg(),
        "rung_seconds": cell_seconds,
        "budget_s": budget_s,
        "configs": {},
    }
    return Sweep(config, base, steps, windows, warmup, cell_seconds, budget_s, accelerator, source, meta)


def run_cells(
    sweep: Sweep, cells: list[Cell], flops_of: Callable[[Config], int], write: Callable[[bool], None], *, early_stop: bool = True
) -> None:
    """Measure each cell in order under the sweep's budget; `write(partial)` after each. With
    `early_stop`, a cell whose first window is 10x slower than the fastest so far stops there."""
    from fastgan.bench.measure import RungResult
    from fastgan.bench.peaks import mfu

    best_rate = 0.0
    pending = list(cells)
    while pending:
        cell = pending.pop(0)
        try:
            result = measure_cell(sweep, cell, best_rate)
        except KeyboardInterrupt:  # the GPU check's SIGINT at its stage budget: keep what was measured
            sweep.results.append(RungResult(cell.name, error="interrupted (SIGINT) while it ran", note=cell.note))
            sweep.results += [RungResult(c.name, skipped="not run (interrupted)", note=c.note) for c in pending]
            sweep.meta["interrupted"] = True
            write(True)
            raise Stopped("fastgan bench: interrupted; the cells measured so far are written", signal.SIGINT) from None
        if result.images_per_s:
            cfg = load_config(sweep.config, sweep.base + cell.overrides)
            result.mfu = mfu(flops_of(cfg), result, cfg, sweep.accelerator.device, sweep.accelerator.num_processes)
            best_rate = max(best_rate, result.images_per_s) if early_stop else 0.0
        sweep.results.append(result)
        if result.skipped:
            sweep.say(f"bench: {cell.name:<34} skipped: {result.skipped}")
        elif result.error:
            sweep.say(f"bench: {cell.name:<34} failed: {result.error}")
        else:
            sweep.say(f"bench: {cell.name:<34} {result.images_per_s:>10,.0f} images/s  (warm-up {result.warmup_s:.1f} s, "
                      f"{result.launches_per_step} launches/step)")  # fmt: skip
        write(True)
    sweep.meta["loadavg_after"] = _loadavg()


def measure_cell(sweep: Sweep, cell: Cell, best_rate: float) -> Any:
    """One cell: skipped with its reason, or measured within its time box (soft and hard)."""
    from fastgan.bench.climb import run_rung
    from fastgan.bench.measure import RungResult

    cfg = load_config(sweep.config, sweep.base + cell.overrides)
    reason = cell.why_not(cfg, sweep.accelerator.device)
    if reason is None:
        try:
            validate(cfg)
        except UsageError as e:
            reason = str(e)
    box = min(sweep.cell_seconds, sweep.remaining())
    if reason is None and sweep.remaining() < MIN_CELL_S:
        reason = f"not run (budget): {max(sweep.remaining(), 0):.0f} s of the bench's {sweep.budget_s:.0f} s left"
    if reason:
        return RungResult(cell.name, skipped=reason, note=cell.note)
    try:
        with hard_time_box(min(HARD_BOX_FACTOR * box, max(sweep.remaining(), box))):
            result = run_rung(cfg, sweep.accelerator, sweep.source, sweep.steps, sweep.windows, sweep.warmup, box, best_rate)
    except CellTimeout as e:
        result = RungResult("", error=str(e))
    result.name, result.note = cell.name, "; ".join(n for n in (cell.note, result.note) if n)
    sweep.meta["configs"][cell.name] = to_dict(cfg)
    return result


def fastest(results: list[Any]) -> Any | None:
    ran = [r for r in results if r.images_per_s]
    return max(ran, key=lambda r: r.images_per_s) if ran else None


def _loadavg() -> list[str]:
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return []
