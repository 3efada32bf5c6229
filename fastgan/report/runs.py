"""What `fastgan report` reads: run folders (config.toml, metrics.jsonl, warnings.jsonl, samples/,
eval*.json) and bench.json files, as plain data. Nothing here imports torch or matplotlib.

Runs written before a file existed stay readable: no warnings.jsonl means none were recorded,
rows without `time_s` take the time of the row before them.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastgan.config import flatten  # {"train": {"batch_size": 64}} -> {"train.batch_size": 64}
from fastgan.errors import UsageError
from fastgan.sampling.timeline import timeline_gif


@dataclass
class Run:
    name: str  # how the page labels it: the folder name, or the path when names repeat
    path: Path
    config: dict[str, Any]  # flat: "section.key" -> value, in file order
    rows: list[dict[str, Any]]  # metrics.jsonl rows, superseded ones dropped, with `train_s` added
    warnings: list[dict[str, Any]]  # warnings.jsonl rows: nimg, time_s, message
    evals: list[tuple[str, dict[str, Any]]]  # (file name, contents) of eval*.json
    latest_png: bytes | None
    timeline: bytes | None  # the GIF's bytes
    notes: list[str] = field(default_factory=list)  # what could not be read, said on the page
    posthoc: tuple[str, bytes] | None = None  # with --sigma-rel: (what was rebuilt, its grid on latest.png's latents)


@dataclass
class Bench:
    path: Path
    meta: dict[str, Any]  # every top-level key but `rungs`
    rungs: list[dict[str, Any]]


def read_jsonl(path: Path, notes: list[str]) -> list[dict[str, Any]]:
    """The JSON objects in a .jsonl file; a torn last line (a run killed mid-write) is skipped and noted."""
    if not path.is_file():
        return []
    rows = []
    for num, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            notes.append(f"{path.name} line {num} is not JSON; skipped")
            continue
        if isinstance(row, dict) and "nimg" in row:
            rows.append(row)
    return rows


def training_seconds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with `train_s`: wall-clock seconds of training, summed over sessions.

    `time_s` counts from the start of each session (a resume starts it again from 0), so a drop
    in it marks a new session, which continues from the previous session's last time. Rows a
    resumed session rewrote (it restarts from a checkpoint, before the last logged nimg) replace
    the old ones, so curves against images seen never go backwards.
    """
    kept: list[dict[str, Any]] = []
    offset = last_time = 0.0
    for row in rows:
        time_s = row.get("time_s")
        if isinstance(time_s, int | float):
            if time_s < last_time:  # a new session
                offset += last_time
            last_time = float(time_s)
        if kept and row["nimg"] < kept[-1]["nimg"]:  # resumed from an earlier checkpoint
            kept = [r for r in kept if r["nimg"] < row["nimg"]]
        kept.append({**row, "train_s": offset + last_time})
    return kept


def unique_names(paths: list[Path]) -> list[str]:
    names = [p.resolve().name for p in paths]
    return [n if names.count(n) == 1 else str(p) for n, p in zip(names, paths, strict=True)]


def load_run(path: Path, name: str) -> Run:
    if not (path.is_dir() and (path / "config.toml").is_file()):
        raise UsageError(f"{path}: not a run folder (no config.toml there); give folders that `fastgan train --out` made")
    try:
        config = flatten(tomllib.loads((path / "config.toml").read_text()))
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path / 'config.toml'}: not valid TOML ({e})") from None
    notes: list[str] = []
    rows = training_seconds(read_jsonl(path / "metrics.jsonl", notes))
    if not rows:
        notes.append("metrics.jsonl is missing or empty: no curves")
    evals = []
    for file in sorted(path.glob("eval*.json")):
        try:
            evals.append((file.name, json.loads(file.read_text())))
        except json.JSONDecodeError:
            notes.append(f"{file.name} is not JSON; skipped")
    samples = path / "samples"
    timeline = samples / "timeline.gif"
    return Run(
        name=name,
        path=path,
        config=config,
        rows=rows,
        warnings=read_jsonl(path / "warnings.jsonl", notes),
        evals=evals,
        latest_png=(samples / "latest.png").read_bytes() if (samples / "latest.png").is_file() else None,
        # runs from before timeline.gif existed get one built from their grids
        timeline=timeline.read_bytes() if timeline.is_file() else timeline_gif(samples),
        notes=notes,
    )


def load_bench(path: Path) -> Bench:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: cannot read it as JSON ({e})") from None
    if not (isinstance(data, dict) and isinstance(data.get("rungs"), list) and all(isinstance(r, dict) for r in data["rungs"])):
        raise UsageError(f"{path}: not a bench.json from `fastgan bench --out` (it needs a 'rungs' list of objects)")
    return Bench(path=path, meta={k: v for k, v in data.items() if k != "rungs"}, rungs=data["rungs"])


def load_inputs(paths: list[Path]) -> tuple[list[Run], list[Bench]]:
    """Folders are runs, .json files are bench results; anything else is a usage error."""
    run_paths, benches = [], []
    for p in paths:
        if p.is_file() and p.suffix == ".json":
            benches.append(load_bench(p))
        elif p.is_dir():
            run_paths.append(p)
        elif not p.exists():
            raise UsageError(f"{p}: no such file or folder")
        else:
            raise UsageError(f"{p}: neither a run folder nor a bench .json file")
    if not run_paths:
        raise UsageError("no run folder given; pass at least one folder that `fastgan train --out` made")
    runs = [load_run(p, n) for p, n in zip(run_paths, unique_names(run_paths), strict=True)]
    return runs, benches
