"""`fastgan bench`: images/s and MFU of each rung of the ladder, on the same model, batch and
device (fastgan.bench.climb), or the scaling over process counts (fastgan.bench.scaling)."""

from __future__ import annotations

from pathlib import Path

from fastgan.bench.ladder import NAMES
from fastgan.config import load_config
from fastgan.errors import UsageError
from fastgan.validate import validate

DEFAULT_CONFIG = Path("configs/mnist-dcgan.toml")


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
    config = config or DEFAULT_CONFIG
    base = tuple(overrides) + ((f"train.batch_size={batch}",) if batch else ())
    cfg = load_config(config, base)
    validate(cfg)
    names = parse_ladder(ladder)
    if rung_seconds <= 0:
        raise UsageError(f"--rung-seconds {rung_seconds:g}: must be positive, e.g. 60")
    if processes:
        from fastgan.bench.scaling import run_scaling

        run_scaling(config, base, names, processes, steps=steps, windows=windows, warmup=warmup, out=out)
        return
    from fastgan.bench.climb import climb

    climb(config, cfg, base, names, steps=steps, windows=windows, warmup=warmup, out=out, json_out=json_out, rung_seconds=rung_seconds)
