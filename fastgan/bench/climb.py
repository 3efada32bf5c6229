"""Climbing the ladder (fastgan.bench.ladder): build the real trainer for each rung, measure it
(fastgan.bench.measure), record its MFU and launches, and build the next rung on the fastest so far.

A rung that cannot run says why; a rung that raises is recorded with its error and the ladder goes
on; a partial bench.json is rewritten after every rung, so a killed bench keeps what it measured.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from fastgan import files
from fastgan.bench.ladder import LADDER
from fastgan.config import Config, load_config, to_dict
from fastgan.errors import UsageError
from fastgan.validate import validate


def climb(
    config: Path,
    cfg: Config,
    base: tuple[str, ...],
    names: list[str],
    *,
    steps: int,
    windows: int,
    warmup: int,
    out: Path | None,
    json_out: Path | None,
    rung_seconds: float,
) -> None:

    from fastgan.bench.launches import enable_cpu_kernel_records
    from fastgan.bench.measure import RungResult, flops_per_step
    from fastgan.bench.peaks import mfu
    from fastgan.bench.results import header, print_table, write
    from fastgan.data.sources import open_source
    from fastgan.train.setup import make_accelerator

    enable_cpu_kernel_records()  # before anything compiles: inductor's CPU kernels show in the launch count
    accelerator = make_accelerator(cfg)
    device = accelerator.device
    source = open_source(cfg.data, cfg.model.channels, cfg.model.resolution)
    flops = flops_per_step(cfg, accelerator, source)
    results: list[RungResult] = []
    configs: dict[str, Any] = {}
    best: tuple[str, tuple[str, ...], float] = ("", base, 0.0)  # the fastest rung so far: name, overrides, images/s
    meta = {
        **header(config, cfg, accelerator, steps=steps, windows=windows, warmup=warmup),
        "flops_per_step": flops,
        "rung_seconds": rung_seconds,
        "configs": configs,
    }
    for rung in LADDER:
        if rung.name not in names:
            continue
        rung_overrides = best[1] + rung.overrides
        rung_cfg = load_config(config, rung_overrides)
        reason = rung.why_not(rung_cfg, device)
        if reason is None:
            try:
                validate(rung_cfg)
            except UsageError as e:
                reason = str(e)
        if reason:
            results.append(RungResult(rung.name, skipped=reason, note=rung.note))
            say(accelerator, f"bench: {rung.name:<13} skipped: {reason}")
            continue
        result = run_rung(rung_cfg, accelerator, source, steps, windows, warmup, rung_seconds, best[2])
        result.name = rung.name
        result.note = "; ".join(n for n in (rung.note + (f" (on {best[0]})" if best[0] else ""), result.note) if n)
        result.mfu = mfu(flops, result, rung_cfg, device, accelerator.num_processes)
        configs[rung.name] = to_dict(rung_cfg)
        results.append(result)
        if result.error:
            say(accelerator, f"bench: {rung.name:<13} failed: {result.error}")
        else:  # a rung can take minutes (compile, slow precisions): show progress
            say(accelerator, f"bench: {rung.name:<13} {result.images_per_s:>9,.0f} images/s  (warm-up {result.warmup_s:.1f} s, "
                f"{result.launches_per_step} launches/step, {result.launches_outside_models} outside G/D)")  # fmt: skip
        if result.images_per_s and result.images_per_s > best[2]:
            best = (rung.name, rung_overrides, result.images_per_s)
        speedups(results)
        if out is not None and accelerator.is_main_process and json_out is None:
            write(out, results, {**meta, "best": best[0], "partial": True}, plot_too=False)  # a killed bench keeps what it measured
    speedups(results)
    meta["best"] = best[0]
    if not accelerator.is_main_process:
        return
    if json_out is not None:  # a child of --processes: hand the numbers to the parent
        files.write_json(json_out, {**meta, "rungs": [dataclasses.asdict(r) for r in results]})
        return
    print_table(results, f"fastgan bench: {config.stem}, global batch {cfg.train.batch_size}, {meta['device']}")
    if best[0]:
        from fastgan.bench.pick import pick_lines

        first = next((r.images_per_s for r in results if r.images_per_s), None)
        meta["pick"] = pick_lines(config, base, best[0], best[1], best[2], first, load_config(config, best[1]), device)
        print("\n".join(meta["pick"]))
    if out is not None:
        for path in write(out, results, meta):
            print(f"wrote {path}", file=sys.stderr)


def speedups(results: list[Any]) -> None:
    baseline = next((r.images_per_s for r in results if r.images_per_s), None)
    for r in results:
        if r.images_per_s and baseline:
            r.speedup = r.images_per_s / baseline


def run_rung(cfg: Any, accelerator: Any, source: Any, steps: int, windows: int, warmup: int, budget_s: float, best_rate: float) -> Any:
    """Build and measure one rung. A rung that raises is recorded with its error, so the ladder
    goes on (a CUDA-graph failure must not hide the other rungs' numbers)."""
    import torch

    from fastgan.bench.measure import RungResult, measure
    from fastgan.train.build import build_trainer

    torch._dynamo.reset()  # each rung compiles afresh, so its warm-up time is its own
    trainer = None
    try:
        trainer = build_trainer(cfg, accelerator, source)
        return measure(trainer, warmup_steps=warmup, window_steps=steps, windows=windows, budget_s=budget_s, best_rate=best_rate)
    except Exception as e:  # noqa: BLE001 - any failure of a rung is data for the report
        first = (str(e).strip().splitlines() or [""])[0][:300]
        return RungResult("", error=f"{type(e).__name__}: {first}")
    finally:
        del trainer
        accelerator.free_memory()  # the Accelerator keeps every prepared model: free this rung's
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def say(accelerator: Any, line: str) -> None:
    if accelerator.is_main_process:
        print(line, file=sys.stderr)
