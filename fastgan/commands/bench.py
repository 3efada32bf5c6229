"""`fastgan bench`: images/s and MFU of each rung of the ladder, on the same model, batch and
device (fastgan.bench.climb); or every cell of a grid (fastgan.bench.grid); or one configuration
at several batch sizes (fastgan.bench.batches); or the scaling over process counts
(fastgan.bench.scaling)."""

from __future__ import annotations

import math
from pathlib import Path

from fastgan import files
from fastgan.bench.ladder import NAMES
from fastgan.config import load_config
from fastgan.errors import UsageError
from fastgan.validate import validate

DEFAULT_CONFIG = Path("mnist-dcgan")  # a preset (fastgan.config.presets): the classic tutorial's model
GRID_SHARE = 0.6  # of --budget for the grid when a --batch list follows it; the batches get the rest


def parse_processes(text: str) -> list[int]:
    """--processes 1,2 -> [1, 2], or a usage error: each count is a whole number, 1 or more."""
    try:
        counts = [int(p) for p in text.split(",")]
    except ValueError:
        raise UsageError(f"--processes {text}: expected process counts, e.g. --processes 1,2") from None
    if any(n < 1 for n in counts):
        raise UsageError(f"--processes {text}: each count must be 1 or more, e.g. --processes 1,2")
    return counts


def parse_ladder(text: str | None) -> list[str]:
    names = [n.strip() for n in text.split(",")] if text else list(NAMES)
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise UsageError(f"--ladder: unknown rung {', '.join(map(repr, unknown))}; choose from: {', '.join(NAMES)}")
    return names


def parse_batches(text: str | None) -> list[int]:
    """--batch 256 or --batch 128,256,1024: global batch sizes, each at least 1, none twice."""
    if not text:
        return []
    try:
        batches = [int(b.replace("_", "")) for b in text.split(",")]
    except ValueError:
        raise UsageError(f"--batch {text!r}: expected a batch size like 256 or a list like 128,256,1024") from None
    if any(b < 1 for b in batches) or len(set(batches)) != len(batches):
        raise UsageError(f"--batch {text!r}: each batch size must be at least 1 and appear once, e.g. 128,256,1024")
    return batches


def run_bench(
    config: Path | None,
    overrides: list[str],
    *,
    steps: int,
    windows: int,
    warmup: int,
    batch: str | None,
    ladder: str | None,
    out: Path | None,
    processes: str | None,
    json_out: Path | None,
    rung_seconds: float = 90.0,
    grid: bool = False,
    budget: float | None = None,
    cells: str | None = None,
) -> None:
    # The options first: each bad one is a line before any config is read or anything written.
    if not (math.isfinite(rung_seconds) and rung_seconds > 0):
        raise UsageError(f"--rung-seconds {rung_seconds:g}: must be a positive number of seconds, e.g. 60")
    if processes is not None:
        parse_processes(processes)
    if out is not None:
        files.check_dir_out(out, "--out")
    names = parse_ladder(ladder)
    config = config or DEFAULT_CONFIG
    batches = parse_batches(batch)
    base = tuple(overrides) + ((f"train.batch_size={batches[0]}",) if batches else ())
    cfg = load_config(config, base)
    validate(cfg)
    if budget is not None and not (math.isfinite(budget) and budget > 0):
        raise UsageError(f"--budget {budget:g}: must be a positive number of seconds, e.g. 300 (for the whole grid or batch list)")
    if grid and ladder:
        raise UsageError("--grid and --ladder: choose one (the grid measures every combination; the ladder one change at a time)")
    if cells and not grid:
        raise UsageError("--cells picks cells of the grid: add --grid")
    if processes and (grid or len(batches) > 1):
        raise UsageError("--processes measures one rung per process count; it does not combine with --grid or a --batch list")
    if ladder and len(batches) > 1:
        raise UsageError("--ladder with a --batch list: a batch list measures one configuration; set it with --set or use --grid")
    if processes:
        from fastgan.bench.scaling import run_scaling

        run_scaling(config, base, names, processes, steps=steps, windows=windows, warmup=warmup, out=out)
        return
    if grid or len(batches) > 1:
        import time

        start = time.monotonic()
        best: tuple[str, tuple[str, ...]] | None = ("the config as given", ())
        if grid:
            from fastgan.bench.grid import pick_cells, run_grid

            picked = pick_cells(cells)
            share = budget * GRID_SHARE if budget is not None and len(batches) > 1 else budget
            best = run_grid(config, cfg, base, cells=picked, steps=steps, windows=windows, warmup=warmup, cell_seconds=rung_seconds,
                            budget_s=share, out=out)  # fmt: skip
        if len(batches) > 1 and best is not None:
            from fastgan.bench.batches import run_batches

            left = None if budget is None else max(0.0, budget - (time.monotonic() - start))
            run_batches(config, tuple(overrides), batches, overrides=best[1], label=best[0], steps=steps, windows=windows,
                        warmup=warmup, cell_seconds=rung_seconds, budget_s=left, out=out)  # fmt: skip
        return
    from fastgan.bench.climb import climb

    climb(config, cfg, base, names, steps=steps, windows=windows, warmup=warmup, out=out, json_out=json_out, rung_seconds=rung_seconds)
