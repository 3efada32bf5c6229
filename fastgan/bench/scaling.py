"""`fastgan bench --processes 1,2`: the same rung under `accelerate launch` with each process
count, the per-process batch held fixed, and the scaling against the first count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from fastgan import files
from fastgan.bench.ladder import NAMES
from fastgan.config import load_config
from fastgan.errors import UsageError


def run_scaling(
    config: Path, base: tuple[str, ...], names: list[str], processes: str, *, steps: int, windows: int, warmup: int, out: Path | None
) -> None:
    """Each process count in its own `accelerate launch`, per-process batch held fixed."""
    from rich.console import Console
    from rich.table import Table

    counts = [int(p) for p in processes.split(",")]  # checked by fastgan.commands.bench.parse_processes
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
        files.write_json(out / "scaling.json", {"config": config.stem, "rung": rung, "date": time.strftime("%Y-%m-%d"), "rows": rows})


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()
