"""The run folder: what marks it as fastgan's, who trains in it, and what its logs keep.

- `.fastgan-run` (JSON) is the first file of every run folder fastgan creates, and holds the
  config the run was started with (and its hash). `--out` refuses a non-empty folder without it, so a
  mistyped `--out` never writes into someone's data.
- `.fastgan-lock` lets one trainer at a time use a folder (fastgan.run.lock).
- `events.jsonl` gets one line per start, resume (with what changed), stop, divergence and end.
- `metrics.jsonl` and `warnings.jsonl` are cut back to the checkpoint a run resumes from, so they
  never hold duplicates, and later sample grids move to `samples/superseded/` (a grid already
  there from an earlier rollback keeps its name; the newcomer gets a time stamp).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

from fastgan import files
from fastgan.config import Config, flatten, loads_config, to_dict, to_toml
from fastgan.config.legacy import v1_tables
from fastgan.config.load import render_tables
from fastgan.errors import UsageError

MARKER = ".fastgan-run"
EVENTS = "events.jsonl"


class Kind(StrEnum):
    ABSENT = "absent"
    EMPTY = "empty"
    RUN = "run"  # has the marker
    LEGACY = "legacy"  # a run from before the marker: config.toml and checkpoints/
    OTHER = "other"  # not empty, not a run: never written into


def config_hash(cfg: Config) -> str:
    return hashlib.sha256(to_toml(cfg).encode()).hexdigest()


def v1_config_hash(cfg: Config) -> str | None:
    """The hash fastgan 0.1 wrote for `cfg` (its config.toml layout), or None if 0.1 could not have run it."""
    tables = v1_tables(flatten(to_dict(cfg)), flatten(to_dict(Config())))
    return None if tables is None else hashlib.sha256(render_tables(tables).encode()).hexdigest()


def started_with(run_dir: Path, cfg: Config) -> bool:
    """Whether the run in `run_dir` was started with exactly `cfg` (the command it began with).
    The marker holds that config; markers of fastgan 0.1 hold only its hash, in 0.1's layout."""
    marker = read_marker(run_dir)
    if "config" in marker:
        try:
            return loads_config(marker["config"], str(run_dir / MARKER)) == cfg
        except UsageError:  # a key this version no longer has: not the same command
            return False
    return marker.get("config_sha256") in (config_hash(cfg), v1_config_hash(cfg))


def inspect(path: Path, flag: str) -> Kind:
    """What `path` is. A file, a path under a file or an unreadable folder is a usage error."""
    try:
        if not path.exists():
            parent = next(p for p in path.parents if p.exists())
            if not parent.is_dir():
                raise UsageError(f"{flag} {path}: {parent} is a file, so no folder can be made under it; choose another {flag}")
            return Kind.ABSENT
        if not path.is_dir():
            raise UsageError(f"{flag} {path}: is a file, not a run folder; choose another {flag}")
        if (path / MARKER).is_file():
            return Kind.RUN
        names = os.listdir(path)
    except OSError as e:
        raise UsageError(f"{flag} {path}: cannot read it ({e.strerror}); choose another {flag}") from None
    if not names:
        return Kind.EMPTY
    if (path / "config.toml").is_file() and (path / "checkpoints").is_dir():
        return Kind.LEGACY
    return Kind.OTHER


def read_marker(path: Path) -> dict[str, Any]:
    try:
        return json.loads((path / MARKER).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def write_marker(path: Path, cfg: Config, flag: str) -> None:
    """Create the run folder (if needed) and mark it: the first thing written into it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        marker = {"fastgan_run": 1, "config_sha256": config_hash(cfg), "config": to_toml(cfg), "created": now()}
        files.write_atomic(path / MARKER, json.dumps(marker) + "\n")
    except OSError as e:
        raise UsageError(f"{flag} {path}: cannot write there ({e.strerror}); choose a writable place") from None


def log_event(run_dir: Path, event: str, **fields: Any) -> None:
    files.append_line(run_dir / EVENTS, files.json_text({"time": now(), "event": event, **fields}, indent=None), files.THEN_RESUME)


def truncate_log(path: Path, cur_nimg: int) -> int:
    """Drop rows past `cur_nimg` (and lines a kill cut short) from a JSONL log; return how many."""
    if not path.is_file():
        return 0
    kept, dropped = [], 0
    for line in path.read_text().splitlines():
        try:
            ok = int(json.loads(line)["nimg"]) <= cur_nimg
        except (ValueError, KeyError, TypeError):
            ok = False
        if ok:
            kept.append(line)
        else:
            dropped += 1
    if dropped:
        files.write_atomic(path, "".join(line + "\n" for line in kept))
    return dropped


def supersede_samples(run_dir: Path, cur_nimg: int) -> int:
    """Move the sample grids written past `cur_nimg` by an earlier run to samples/superseded/, so
    the samples (and samples/timeline.gif) show the path the run now follows."""
    moved = 0
    for p in (run_dir / "samples").glob("nimg-*.png"):
        digits = p.stem.removeprefix("nimg-")
        if digits.isdigit() and int(digits) > cur_nimg:
            (p.parent / "superseded").mkdir(exist_ok=True)
            os.replace(p, files.unused_name(p.parent / "superseded" / p.name))
            moved += 1
    return moved


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
