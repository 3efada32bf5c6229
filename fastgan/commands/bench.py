"""`fastgan bench`: images/s and MFU of each rung of the ladder, on the same model, batch and
device (fastgan.bench.climb), or the scaling over process counts (fastgan.bench.scaling)."""

from __future__ import annotations

import math
from pathlib import Path

from fastgan import files
from fastgan.bench.ladder import NAMES
from fastgan.config import load_config
from fastgan.errors import UsageError
from fastgan.validate import validate

DEFAULT_CONFIG = Path("mnist-dcgan")  # a preset (fastgan.config.presets): the classic tutorial's model


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


def run_bench(
    config: Path | None,
    overrides: list[str],
    *,
    steps: int,
    windows: int,
    warmup: int,
    batch: int | None,
    ladder: str | None,
    out: Path | None,
    processes: str | None,
    json_out: Path | None,
    rung_seconds: float = 90.0,
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
    base = tuple(overrides) + ((f"train.batch_size={batch}",) if batch else ())
    cfg = load_config(config, base)
    validate(cfg)
    if processes:
        from fastgan.bench.scaling import run_scaling

        run_scaling(config, base, names, processes, steps=steps, windows=windows, warmup=warmup, out=out)
        return
    from fastgan.bench.climb import climb

    climb(config, cfg, base, names, steps=steps, windows=windows, warmup=warmup, out=out, json_out=json_out, rung_seconds=rung_seconds)
