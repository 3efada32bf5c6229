"""Where the time of one training step goes: torch.profiler around the real step (the trainer
`fastgan train` builds), by phase and by operator.

Phases are the step's own `record_function` ranges (model:G.forward, model:D.forward,
model:D.backward, model:G.backward, ...) plus the optimiser steps, the EMA update and the data
fetch, timed around the step's calls without changing it. Operators are sorted by self CPU time.

    python benchmarks/profile_step.py configs/mnist-dcgan.toml --set data.source=fashion-mnist \
        --set data.backend=tensor --steps 8 --out benchmarks/results/NAME.md

A CPU without bf16 units is reproduced on any x86 machine with
`ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2` in the environment; the result records both
variables, the CPU's flags and the load average, since a busy machine skews every figure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config", type=Path)
    p.add_argument("--set", dest="overrides", action="append", default=[], help="section.key=value (repeatable)")
    p.add_argument("--steps", type=int, default=8, help="profiled steps, after --warmup steps")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--top", type=int, default=20, help="operators listed")
    p.add_argument("--out", type=Path, help="write the markdown here too")
    args = p.parse_args()

    from fastgan.config import load_config
    from fastgan.data.sources import open_source
    from fastgan.train.build import build_trainer
    from fastgan.train.setup import make_accelerator

    cfg = load_config(args.config, tuple(args.overrides))
    accelerator = make_accelerator(cfg)
    trainer = build_trainer(cfg, accelerator, open_source(cfg.data, cfg.model.channels, cfg.model.resolution))
    step = trainer.step
    wrap(step.G, "opt", "model:G.optimizer")
    wrap(step.D, "opt", "model:D.optimizer")
    wrap(step.ema, "update", "EMA.update")
    data = iter(trainer.data)
    fetch = timed_iter(data)
    for _ in range(args.warmup):
        trainer.train_step(fetch)
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            trainer.train_step(fetch)
    wall = time.perf_counter() - t0
    images = args.steps * cfg.train.batch_size * cfg.tricks.d_steps
    averages = prof.key_averages()
    phases = {e.key: e.cpu_time_total for e in averages if e.key.startswith(("model:", "EMA.", "data."))}
    lines = [
        f"# Where the time goes: {args.config.stem}, batch {cfg.train.batch_size}, {args.steps} profiled steps",
        "",
        f"- command: `python benchmarks/profile_step.py {' '.join(sys.argv[1:])}`",
        f"- environment: ATEN_CPU_CAPABILITY={os.environ.get('ATEN_CPU_CAPABILITY', '(unset)')}, "
        f"ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}, "
        f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        f"- CPU: {cpu_model()}; bf16 units: {bf16_flags()}",
        f"- load average before/after: {LOAD_BEFORE} / {loadavg()} (a busy machine skews every figure)",
        f"- {images / wall:,.0f} images/s under the profiler ({wall / args.steps * 1e3:.1f} ms/step; the profiler adds overhead)",
        "",
        "## By phase (CPU total, nested ranges included in their parents)",
        "",
        "| phase | ms/step | share of the step |",
        "| --- | ---: | ---: |",
    ]
    step_us = wall / args.steps * 1e6
    grouped: dict[str, float] = defaultdict(float)
    for key, us in phases.items():
        grouped[key] += us / args.steps
    for key, us in sorted(grouped.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {key} | {us / 1e3:.2f} | {us / step_us:.0%} |")
    lines += ["", "## Operators (self CPU time)", "", "```", averages.table(sort_by="self_cpu_time_total", row_limit=args.top), "```"]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


def wrap(obj: object, name: str, label: str) -> None:
    """Time `obj.name(...)` as a profiler range, without changing what it does."""
    inner = getattr(obj, name)
    if not callable(inner):  # an optimiser: time its step
        wrap(inner, "step", label)
        return

    def timed(*a: object, **k: object) -> object:
        with record_function(label):
            return inner(*a, **k)

    setattr(obj, name, timed)


def timed_iter(data):  # type: ignore[no-untyped-def]
    while True:
        with record_function("data.next"):
            batch = next(data)
        yield batch


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def bf16_flags() -> str:
    flags = set(subprocess.run(["lscpu"], capture_output=True, text=True).stdout.split())
    have = [f for f in ("avx512_bf16", "amx_bf16", "avx512f", "avx2") if f in flags]
    return ", ".join(have) or "none"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


LOAD_BEFORE = loadavg()

if __name__ == "__main__":
    main()
