"""`fastgan bench`: images/s and MFU of each rung of the ladder, on the same model, batch and device."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastgan.bench.ladder import LADDER, NAMES
from fastgan.config import load_config, to_dict
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
        run_scaling(config, base, names, processes, steps=steps, windows=windows, warmup=warmup, out=out)
        return

    import torch

    from fastgan.bench.launches import enable_cpu_kernel_records
    from fastgan.bench.measure import RungResult, flops_per_step
    from fastgan.bench.peaks import cpu_info, device_name
    from fastgan.bench.results import print_table, write
    from fastgan.data.sources import open_source
    from fastgan.train.build import make_accelerator

    enable_cpu_kernel_records()  # before anything compiles: inductor's CPU kernels show in the launch count
    accelerator = make_accelerator(cfg)
    device = accelerator.device
    source = open_source(cfg.data, cfg.model.channels, cfg.model.resolution)
    flops = flops_per_step(cfg, accelerator, source)
    results: list[RungResult] = []
    configs: dict[str, Any] = {}
    best: tuple[str, tuple[str, ...], float] = ("", base, 0.0)  # the fastest rung so far: name, overrides, images/s
    meta = {
        "config_name": config.stem,
        "device": device_name(device),
        "cpu": cpu_info(),
        "processes": accelerator.num_processes,
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "accelerate": importlib.metadata.version("accelerate"),
        "python": sys.version.split()[0],
        "command": "fastgan bench " + " ".join(sys.argv[2:]),
        "batch_size": cfg.train.batch_size,
        "flops_per_step": flops,
        "steps_per_window": steps,
        "windows": windows,
        "warmup_steps": warmup,
        "rung_seconds": rung_seconds,
        "tf32": cfg.train.tf32,
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
        json_out.write_text(json.dumps({**meta, "rungs": [dataclasses.asdict(r) for r in results]}))
        return
    print_table(results, f"fastgan bench: {config.stem}, global batch {cfg.train.batch_size}, {meta['device']}")
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


def mfu(flops: int, result: Any, cfg: Any, device: Any, processes: int) -> float | None:
    """Achieved FLOP/s of all processes over the peak of all their devices."""
    from fastgan.bench.peaks import peak_flops

    peak = peak_flops(device, cfg.train.precision, cfg.train.tf32)
    if not peak or not result.images_per_s:
        return None
    steps_per_s = result.images_per_s / (cfg.train.batch_size * cfg.tricks.d_steps)
    return flops * steps_per_s / (peak * processes)


def say(accelerator: Any, line: str) -> None:
    if accelerator.is_main_process:
        print(line, file=sys.stderr)


def run_scaling(
    config: Path, base: tuple[str, ...], names: list[str], processes: str, *, steps: int, windows: int, warmup: int, out: Path | None
) -> None:
    """Each process count in its own `accelerate launch`, per-process batch held fixed."""
    from rich.console import Console
    from rich.table import Table

    try:
        counts = [int(p) for p in processes.split(",")]
    except ValueError:
        raise UsageError(f"--processes {processes!r}: expected counts like 1,2") from None
    rung = names[-1] if len(names) < len(NAMES) else "tensor"
    cfg = load_config(config, base)
    rows = []
    for n in counts:
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "bench.json"
            args = [
                "-m",
                "fastgan",
                "bench",
                str(config),
                "--ladder",
                rung,
                "--steps",
                str(steps),
                "--windows",
                str(windows),
                "--warmup",
                str(warmup),
                "--json-out",
                str(result),
            ]
            args += [a for o in base if not o.startswith("train.batch_size=") for a in ("--set", o)]
            args += ["--batch", str(cfg.train.batch_size * n)]  # the same batch per process
            launcher = [
                sys.executable,
                "-m",
                "accelerate.commands.launch",
                "--multi_gpu",
                "--num_processes",
                str(n),
                "--num_machines",
                "1",
                "--mixed_precision",
                "no",
                "--dynamo_backend",
                "no",
                "--main_process_port",
                "29531",
            ]
            cmd = [*launcher, *args] if n > 1 else [sys.executable, *args]
            env = dict(os.environ)
            if not _has_cuda():  # n processes share the cores
                env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // n))
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if proc.returncode != 0:
                raise UsageError(f"bench with {n} process(es) failed:\n{proc.stderr[-2000:]}")
            data = json.loads(result.read_text())
        total = data["rungs"][0]["images_per_s"]
        rows.append({"processes": n, "total_images_per_s": total, "per_process_images_per_s": total / n, "device": data["device"]})
    one = rows[0]["total_images_per_s"]
    table = Table(title=f"fastgan bench --processes: {config.stem}, rung {rung}, batch {cfg.train.batch_size} per process")
    for h in ("processes", "total images/s", "per process", "scaling vs first"):
        table.add_column(h, justify="right")
    for r in rows:
        r["scaling"] = r["total_images_per_s"] / one
        table.add_row(
            str(r["processes"]), f"{r['total_images_per_s']:,.0f}", f"{r['per_process_images_per_s']:,.0f}", f"{r['scaling']:.2f}x"
        )
    Console().print(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "scaling.json").write_text(
            json.dumps({"config": config.stem, "rung": rung, "date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=2)
        )


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
