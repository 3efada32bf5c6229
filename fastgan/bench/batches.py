"""`fastgan bench --batch 128,256,1024,4096`: one configuration at each global batch size, on the
device-resident dataset: images/s, MFU, launches per step and peak memory per batch, as a table,
batches.json/md and a plot (fastgan.bench.sweep times each batch).

The configuration is the command line's (its config and `--set` overrides), or with `--grid`
the grid's fastest cell at the first batch. FLOPs are counted once, at the smallest batch, and
scale with the batch (every layer's work is per image). A batch that fails (out of memory, say)
is recorded with its error and the larger ones are still tried.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastgan.bench.sweep import Cell, fastest, open_sweep, run_cells
from fastgan.config import Config, load_config

BATCH_HEADER = ["batch", "images/s", "ms/step", "MFU", "launches/step", "peak mem MiB", "warm-up s", "note"]


def batch_cells(batches: list[int], overrides: tuple[str, ...]) -> list[Cell]:
    return [Cell(f"batch {b}", (*overrides, "data.backend=tensor", f"train.batch_size={b}")) for b in batches]


def run_batches(
    config: Path,
    base: tuple[str, ...],
    batches: list[int],
    *,
    overrides: tuple[str, ...],
    label: str,
    steps: int,
    windows: int,
    warmup: int,
    cell_seconds: float,
    budget_s: float | None,
    out: Path | None,
) -> None:
    """Measure `overrides` (a grid cell's, or none) at each batch in `batches`."""
    from fastgan.bench.measure import count_flops
    from fastgan.bench.results import write

    smallest = min(batches)
    cfg = load_config(config, (*base, *overrides, "data.backend=tensor", f"train.batch_size={smallest}"))
    sweep = open_sweep(config, cfg, base, steps=steps, windows=windows, warmup=warmup, cell_seconds=cell_seconds,
                       budget_s=budget_s, kind="batch")  # fmt: skip
    flops = count_flops(cfg, sweep.accelerator, sweep.source)
    per_image = flops.per_step / (smallest * cfg.tricks.d_steps)
    sweep.meta.update(configuration=label, overrides=list(overrides), batch_size=batches, flops_per_image=per_image)

    def flops_of(c: Config) -> int:
        return round(per_image * c.train.batch_size * c.tricks.d_steps)

    def save(partial: bool) -> None:
        best = fastest(sweep.results)
        sweep.meta["best"] = best.name if best else ""
        if out is not None and sweep.accelerator.is_main_process:
            write(out, sweep.results, {**sweep.meta, "partial": partial}, stem="batches", plot_too=not partial,
                  explain=explain(sweep.results, sweep.meta), draw=plot_batches)  # fmt: skip

    run_cells(sweep, batch_cells(batches, overrides), flops_of, save, early_stop=False)
    save(False)
    if sweep.accelerator.is_main_process:
        print_batches(sweep.results, f"fastgan bench --batch: {config.stem}, {label}, {sweep.meta['device']}")
        best = fastest(sweep.results)
        print(f"fastest batch: {best.name.split()[-1]}, {best.images_per_s:,.0f} images/s" if best else "fastest batch: none ran")


def batch_rows(results: list[Any]) -> list[list[str]]:
    rows = []
    for r in results:
        b = r.name.split()[-1]
        if not r.images_per_s:
            rows.append([b, "failed" if r.error else "skipped", "", "", "", "", "", r.error or r.skipped or ""])
            continue
        rows.append([
            b, f"{r.images_per_s:,.0f}", f"{r.ms_per_step:.2f}", "" if r.mfu is None else f"{100 * r.mfu:.1f}%",
            str(r.launches_per_step), "" if r.peak_mem_bytes is None else f"{r.peak_mem_bytes / 2**20:,.0f}",
            f"{r.warmup_s:.1f}", r.note,
        ])  # fmt: skip
    return rows


def print_batches(results: list[Any], title: str) -> None:
    from fastgan.bench.results import print_rows

    print_rows(title, BATCH_HEADER, batch_rows(results), left=("note",))


def explain(results: list[Any], meta: dict[str, Any]) -> list[str]:
    lines = ["", f"Configuration at every batch: {meta['configuration']}.", "",
             "| " + " | ".join(BATCH_HEADER) + " |", "|" + "---|" * len(BATCH_HEADER)]  # fmt: skip
    lines += ["| " + " | ".join(row) + " |" for row in batch_rows(results)]
    lines += [
        "",
        f"Fastest: **{meta['best']}**." if meta.get("best") else "No batch ran.",
        "",
        "batch is global; the data is on the device. FLOPs per image were counted once, at the smallest batch",
        "(lazy R1/R2 included, divided by reg_every). peak mem: CUDA max_memory_allocated during the batch; on a",
        "CPU the process's resident memory after it (not a peak). MFU: against the peak of the precision used (GPU only).",
    ]
    return lines


def plot_batches(results: list[Any], path: Path, title: str) -> bool:
    """images/s against the batch (log 2 axis), MFU beside each point where known; False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    ran = [r for r in results if r.images_per_s]
    if not ran:
        return False
    xs = [int(r.name.split()[-1]) for r in ran]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(xs, [r.images_per_s for r in ran], marker="o", color="#4477aa")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    for x, r in zip(xs, ran, strict=True):
        label = f"{100 * r.mfu:.1f}% MFU" if r.mfu is not None else f"{r.launches_per_step} launches"
        ax.annotate(label, (x, r.images_per_s), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.set_xlabel("global batch")
    ax.set_ylabel("images / s (median)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
