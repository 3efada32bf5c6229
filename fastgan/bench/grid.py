"""`fastgan bench --grid`: every combination of precision (fp32/TF32, bf16), compile mode (off,
default, reduce-overhead, max-autotune) and memory format (contiguous, channels_last), on the
device-resident dataset (data.backend = "tensor"), each cell time-boxed (fastgan.bench.sweep).
The ladder (fastgan.bench.ladder) tells the story of one change at a time; the grid finds the
fastest combination, including those a greedy ladder never tries (bf16 + CUDA graphs after bf16
alone lost, say).

Cells run in order of value, so a budget cuts the least likely winners: the fp32 eager baseline
(every speed-up is against it), then CUDA graphs, then the eager cells, then compile "default",
then max-autotune last (its autotuning can take minutes: it gets what the budget has left, and
its hard time box). A cell that cannot run here says why.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from fastgan.bench.sweep import Cell, Sweep, fastest, open_sweep, run_cells
from fastgan.config import Config, load_config
from fastgan.errors import UsageError

PRECISIONS = ("no", "bf16")
COMPILES = ("off", "default", "reduce-overhead", "max-autotune")
LAYOUTS = (False, True)  # channels_last
VALUE_ORDER = ("reduce-overhead", "off", "default", "max-autotune")  # after the baseline: the likeliest winners first
GRID_NOTE = "data on the device; fp32 matmuls and convolutions in TF32 where train.tf32 (GPUs)"


def cell_name(precision: str, compile_mode: str, channels_last: bool) -> str:
    return f"{'fp32' if precision == 'no' else precision}/{compile_mode}/{'channels_last' if channels_last else 'contiguous'}"


def _why_not(compile_mode: str) -> Any:
    def why_not(cfg: Config, device: Any) -> str | None:
        if compile_mode == "reduce-overhead" and device.type != "cuda":
            return "CUDA graphs need a GPU"
        on_cpu_inductor = compile_mode != "off" and device.type != "cuda" and cfg.train.compile_backend == "inductor"
        if on_cpu_inductor and not (shutil.which("cc") or shutil.which("gcc")):
            return "no C++ compiler for inductor on the CPU"
        return None

    return why_not


def grid_cells() -> list[Cell]:
    """All 16 cells, in the order they run (see the module docstring)."""
    baseline = ("no", "off", False)
    cells = [baseline]
    for compile_mode in VALUE_ORDER:
        precisions = ("bf16", "no") if compile_mode != "off" else ("no", "bf16")
        for precision in precisions:
            for layout in (True, False) if precision == "bf16" else LAYOUTS:
                if (precision, compile_mode, layout) != baseline:
                    cells.append((precision, compile_mode, layout))
    return [
        Cell(
            cell_name(p, c, cl),
            ("data.backend=tensor", f"train.precision={p}", f"train.compile={c}", f"train.channels_last={str(cl).lower()}"),
            _why_not(c),
            note="the baseline" if (p, c, cl) == baseline else "",
        )
        for p, c, cl in cells
    ]


def pick_cells(text: str | None) -> list[Cell]:
    """--cells a,b: those grid cells, in the grid's order; every cell without it."""
    cells = grid_cells()
    if not text:
        return cells
    wanted = [n.strip() for n in text.split(",") if n.strip()]
    known = {c.name for c in cells}
    unknown = [n for n in wanted if n not in known]
    if unknown or not wanted:
        raise UsageError(
            f"--cells: unknown cell {', '.join(map(repr, unknown)) or repr(text)}; cells are PRECISION/COMPILE/LAYOUT with "
            f"PRECISION fp32 or bf16, COMPILE one of {', '.join(COMPILES)}, LAYOUT contiguous or channels_last"
        )
    return [c for c in cells if c.name in wanted]


def run_grid(
    config: Path,
    cfg: Config,
    base: tuple[str, ...],
    *,
    cells: list[Cell],
    steps: int,
    windows: int,
    warmup: int,
    cell_seconds: float,
    budget_s: float | None,
    out: Path | None,
) -> tuple[str, tuple[str, ...]] | None:
    """Measure the grid; returns the fastest cell's name and overrides (None when none ran)."""
    from fastgan.bench.climb import speedups
    from fastgan.bench.measure import count_flops
    from fastgan.bench.results import print_table, write

    sweep = open_sweep(config, cfg, base, steps=steps, windows=windows, warmup=warmup, cell_seconds=cell_seconds,
                       budget_s=budget_s, kind="grid")  # fmt: skip
    flops = count_flops(cfg, sweep.accelerator, sweep.source)
    sweep.meta.update(flops_per_step=flops.per_step, flops={**dataclasses.asdict(flops), "per_step": flops.per_step}, note=GRID_NOTE)

    def save(partial: bool) -> None:
        speedups(sweep.results)
        best = fastest(sweep.results)
        sweep.meta["best"] = best.name if best else ""
        if out is not None and sweep.accelerator.is_main_process:
            write(out, sweep.results, {**sweep.meta, "partial": partial}, stem="grid", plot_too=not partial, explain=grid_explain(sweep))

    run_cells(sweep, cells, lambda c: flops.per_step, save)
    save(False)
    best = fastest(sweep.results)
    if sweep.accelerator.is_main_process:
        print_table(sweep.results, f"fastgan bench --grid: {config.stem}, global batch {cfg.train.batch_size}, {sweep.meta['device']}")
        print(f"fastest cell: {best.name}, {best.images_per_s:,.0f} images/s" if best else "fastest cell: none ran")
    if best is None:
        return None
    overrides = next(c.overrides for c in cells if c.name == best.name)
    if sweep.accelerator.is_main_process:
        from fastgan.bench.pick import pick_lines

        first = next((r.images_per_s for r in sweep.results if r.images_per_s), None)
        picked = load_config(config, base + overrides)
        rate = best.images_per_s or 0.0
        print("\n".join(pick_lines(config, base, best.name, base + overrides, rate, first, picked, sweep.accelerator.device)))
    return best.name, overrides


def grid_explain(sweep: Sweep) -> list[str]:
    """The grid as a matrix (images/s; rows: precision and layout, columns: compile mode), then how it was measured."""
    by_name = {r.name: r for r in sweep.results}
    lines = ["", "| precision / layout | " + " | ".join(COMPILES) + " |", "|---|" + "---|" * len(COMPILES)]
    for precision in PRECISIONS:
        for layout in LAYOUTS:
            row = []
            for compile_mode in COMPILES:
                r = by_name.get(cell_name(precision, compile_mode, layout))
                row.append("" if r is None else f"{r.images_per_s:,.0f}" if r.images_per_s else "failed" if r.error else "skipped")
            label = f"{'fp32' if precision == 'no' else precision}, {'channels_last' if layout else 'contiguous'}"
            lines.append(f"| {label} | " + " | ".join(row) + " |")
    best = sweep.meta.get("best")
    lines += [
        "",
        f"Fastest cell: **{best}**." if best else "No cell ran.",
        "",
        "Each cell is the command line's config with that precision, compile mode and memory format, the data on the",
        "device (data.backend = tensor); speed-up is against the first cell (fp32, eager, contiguous). Cells ran in the",
        "order of the table above, each time-boxed (--rung-seconds; a compile still running at twice that is",
        "interrupted), the whole grid within --budget; a cell that failed is listed with its error.",
        "images/s is the median of the timed windows; warm-up, compile included, is excluded. FLOPs per step include",
        "the lazy R1/R2 pass divided by reg_every. MFU: against the peak of the precision used (GPU only).",
        "mem: CUDA max_memory_allocated during the cell; on a CPU the process's resident memory after it (not a peak).",
    ]
    return lines
