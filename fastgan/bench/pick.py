"""What the bench would train with: the fastest configuration it measured, as the `--set` lines
that give it, and whether `train.precision = "auto"` agrees with it on this device.

`auto` is a rule (bf16 where the device computes in it, fp32 elsewhere) drawn from measurements
(docs/benchmarks.md); the bench is the measurement on the machine at hand, so where the two
disagree the bench says so and gives the setting to use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastgan.config import Config


def effective_overrides(base: tuple[str, ...], overrides: tuple[str, ...]) -> list[str]:
    """`overrides` past the command line's own `base`, the last value of each key, in order."""
    last: dict[str, str] = {}
    for o in overrides[len(base) :] if overrides[: len(base)] == base else overrides:
        key = o.split("=", 1)[0]
        last.pop(key, None)
        last[key] = o
    return list(last.values())


def pick_lines(config: Path, base: tuple[str, ...], name: str, overrides: tuple[str, ...], rate: float, baseline: float | None,
               picked: Config, device: Any) -> list[str]:  # fmt: skip
    """Two lines: the pick (name, speed, the command that trains with it) and auto's verdict."""
    from fastgan.hardware import has_bf16_units, resolve_precision

    sets = " ".join(f"--set {o}" for o in effective_overrides(base, overrides))
    ratio = f", {rate / baseline:.2f}x the first" if baseline else ""
    lines = [
        f"bench: would pick {name}: the fastest measured here, {rate:,.0f} images/s{ratio}; to train with it:",
        f"  fastgan train {config} {sets}".rstrip(),
    ]
    auto = resolve_precision("auto", device)
    why = "the device computes in bf16" if has_bf16_units(device) else "no bf16 units in reach of the kernels, so fp32"
    used = picked.train.precision if picked.train.precision != "auto" else auto
    if used == auto:
        lines.append(f'bench: train.precision = "auto" gives {label(auto)} here ({why}), as measured fastest')
    else:
        lines.append(f'bench: train.precision = "auto" gives {label(auto)} here ({why}), but {label(used)} measured '
                     f"fastest: set train.precision={used}")  # fmt: skip
    return lines


def label(precision: str) -> str:
    return "fp32" if precision == "no" else precision
