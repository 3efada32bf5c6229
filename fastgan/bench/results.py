"""Bench output: a rich table, bench.json, a markdown summary, and bench.png."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path
from typing import Any

from fastgan import files
from fastgan.bench.measure import RungResult
from fastgan.config import Config


def header(config: Path, cfg: Config, accelerator: Any, *, steps: int, windows: int, warmup: int) -> dict[str, Any]:
    """What every bench result says of where and how it was measured (the ladder's and a sweep's)."""
    import importlib.metadata
    import sys
    import time

    import torch

    from fastgan.bench.peaks import device_name
    from fastgan.hardware import cpu_info

    return {
        "config_name": config.stem,
        "device": device_name(accelerator.device),
        "cpu": cpu_info(),
        "processes": accelerator.num_processes,
        "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "accelerate": importlib.metadata.version("accelerate"),
        "python": sys.version.split()[0],
        "command": "fastgan bench " + " ".join(sys.argv[2:]),
        "batch_size": cfg.train.batch_size,
        "steps_per_window": steps,
        "windows": windows,
        "warmup_steps": warmup,
        "tf32": cfg.train.tf32,
    }


def _fmt(v: float | None, spec: str) -> str:
    return "" if v is None else format(v, spec)


def table_rows(results: list[RungResult]) -> list[list[str]]:
    rows = []
    for r in results:
        if r.skipped or r.error:
            why = f"skipped: {r.skipped}" if r.skipped else f"FAILED: {r.error}"
            rows.append([r.name, "skipped" if r.skipped else "failed", "", "", "", "", "", "", "", why])
            continue
        lo, hi = r.images_per_s_spread or (None, None)
        rows.append(
            [
                r.name,
                _fmt(r.images_per_s, ",.0f"),
                f"{_fmt(lo, ',.0f')}-{_fmt(hi, ',.0f')}",
                _fmt(r.ms_per_step, ".2f"),
                _fmt(r.speedup, ".2f") + "x",
                _fmt(None if r.mfu is None else 100 * r.mfu, ".1f") + ("%" if r.mfu is not None else ""),
                "" if r.launches_per_step is None else str(r.launches_per_step),
                "" if r.launches_outside_models is None else str(r.launches_outside_models),
                _fmt(None if r.peak_mem_bytes is None else r.peak_mem_bytes / 2**20, ",.0f"),
                r.note,
            ]
        )
    return rows


HEADER = ["rung / cell", "images/s", "spread", "ms/step", "speed-up", "MFU", "launches/step", "outside G/D", "mem MiB", "note"]


def print_table(results: list[RungResult], title: str) -> None:
    print_rows(title, HEADER, table_rows(results), left=("rung / cell", "note"))


def print_rows(title: str, header: list[str], rows: list[list[str]], left: tuple[str, ...]) -> None:
    """A rich table; where stdout is not a terminal (logs, CI) it is not squeezed into 80 columns."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for h in header:
        table.add_column(h, justify="left" if h in left else "right")
    for row in rows:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(table)


LADDER_EXPLAIN = [
    "",
    "Each rung adds one change on top of the fastest rung before it (named in the note).",
    "images/s is the median of the timed windows (spread: min-max); warm-up, compile included, is excluded.",
    "Launches: kernel launches in one warmed step (CUDA runtime launches on a GPU; work operators and inductor",
    "kernels on a CPU); 'outside G/D' are those outside the models' forward, backward and penalty ranges.",
    "mem: CUDA max_memory_allocated during the rung; on a CPU the process's resident memory after it (not a peak).",
    "MFU: all processes' FLOP/s over all their devices' peak, for the precision used and train.tf32 (GPU only).",
]


def markdown(results: list[RungResult], meta: dict[str, Any], explain: list[str] | None = None) -> str:
    lines = [f"# fastgan bench{' --' + meta['kind'] if meta.get('kind') else ''}: {meta['config_name']} on {meta['device']}", ""]
    lines += [f"- {k}: {meta[k]}" for k in ("date", "torch", "accelerate", "command", "batch_size", "flops_per_step", "tf32") if k in meta]
    if meta.get("loadavg_before"):
        before, after = " ".join(meta["loadavg_before"]), " ".join(meta.get("loadavg_after", []))
        lines += [f"- load average (1, 5, 15 min) before: {before}; after: {after}"]
    cpu = meta.get("cpu", {})
    lines += [f"- cpu: {cpu.get('model', '?')}; bf16 units: {cpu.get('bf16_units', '?')} (all flags in the JSON)"]
    lines += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(results)]
    lines += LADDER_EXPLAIN if explain is None else explain
    return "\n".join(lines) + "\n"


def plot(results: list[RungResult], path: Path, title: str) -> bool:
    """A bar chart of images/s per rung; False when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ran = [r for r in results if r.images_per_s is not None and r.speedup is not None]
    fig, ax = plt.subplots(figsize=(1.2 * len(ran) + 2, 4))
    bars = ax.bar([r.name for r in ran], [r.images_per_s or 0.0 for r in ran], color="#4477aa")
    for bar, r in zip(bars, ran, strict=True):
        ax.annotate(f"{r.speedup:.2f}x", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom")
    if any(len(r.name) > 14 for r in ran):  # grid cells: precision/compile/layout
        plt.setp(ax.get_xticklabels(), rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("images / s (median)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    files.write_atomic(path, buf.getvalue())
    return True


def write(
    out: Path,
    results: list[RungResult],
    meta: dict[str, Any],
    stem: str = "bench",
    plot_too: bool = True,
    explain: list[str] | None = None,
    draw: Any = None,
) -> list[Path]:
    """{stem}.json and {stem}.md, and {stem}.png (by `draw`, default the bar chart) when matplotlib is there."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {**meta, "rungs": [dataclasses.asdict(r) for r in results]}
    files.write_json(out / f"{stem}.json", payload)  # strict: a NaN is written as null
    files.write_atomic(out / f"{stem}.md", markdown(results, meta, explain))
    written = [out / f"{stem}.json", out / f"{stem}.md"]
    if plot_too and (draw or plot)(results, out / f"{stem}.png", f"{meta['config_name']} on {meta['device']}"):
        written.append(out / f"{stem}.png")
    return written
