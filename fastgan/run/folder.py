"""The run folder: what marks it as fastgan's, who trains in it, and what its logs keep.

- `.fastgan-run` (JSON) is the first file of every run folder fastgan creates, and holds the hash
  of the config the run was started with. `--out` refuses a non-empty folder without it, so a
  mistyped `--out` never writes into someone's data.
- `.fastgan-lock` (JSON: pid, host, SLURM job) lets one trainer at a time use a folder. Its owner
  refreshes it every HEARTBEAT_S; it is stale when its process is gone (same host), when it
  belongs to an earlier run of the same SLURM job (a requeue), or after STALE_S without refresh.
- `events.jsonl` gets one line per start, resume (with what changed), stop, divergence and end.
- `metrics.jsonl` and `warnings.jsonl` are cut back to the checkpoint a run resumes from, so they
  never hold duplicates, and later sample grids move to `samples/superseded/`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from fastgan.config import Config, to_toml
from fastgan.errors import UsageError

MARKER = ".fastgan-run"
LOCK = ".fastgan-lock"
EVENTS = "events.jsonl"
HEARTBEAT_S = 30.0
STALE_S = 300.0


class Kind(StrEnum):
    ABSENT = "absent"
    EMPTY = "empty"
    RUN = "run"  # has the marker
    LEGACY = "legacy"  # a run from before the marker: config.toml and checkpoints/
    OTHER = "other"  # not empty, not a run: never written into


def config_hash(cfg: Config) -> str:
    return hashlib.sha256(to_toml(cfg).encode()).hexdigest()


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
        write_atomic(path / MARKER, json.dumps({"fastgan_run": 1, "config_sha256": config_hash(cfg), "created": _now()}) + "\n")
    except OSError as e:
        raise UsageError(f"{flag} {path}: cannot write there ({e.strerror}); choose a writable place") from None


def log_event(run_dir: Path, event: str, **fields: Any) -> None:
    with open(run_dir / EVENTS, "a") as f:
        f.write(json.dumps({"time": _now(), "event": event, **fields}) + "\n")


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
        write_atomic(path, "".join(line + "\n" for line in kept))
    return dropped


def supersede_samples(run_dir: Path, cur_nimg: int) -> int:
    """Move the sample grids written past `cur_nimg` by an earlier run to samples/superseded/, so
    the samples (and samples/timeline.gif) show the path the run now follows."""
    moved = 0
    for p in (run_dir / "samples").glob("nimg-*.png"):
        digits = p.stem.removeprefix("nimg-")
        if digits.isdigit() and int(digits) > cur_nimg:
            (p.parent / "superseded").mkdir(exist_ok=True)
            os.replace(p, p.parent / "superseded" / p.name)
            moved += 1
    return moved


@dataclass
class Lock:
    path: Path
    owner: dict[str, Any]
    stop: threading.Event = field(default_factory=threading.Event)

    def start_heartbeat(self) -> None:
        threading.Thread(target=self._beat, name="fastgan-lock", daemon=True).start()

    def _beat(self) -> None:
        while not self.stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        self.stop.set()
        if _read_json(self.path).get("pid") == self.owner["pid"]:
            self.path.unlink(missing_ok=True)


def acquire_lock(run_dir: Path) -> tuple[Lock, str]:
    """Take the folder's lock (main process); returns it and a notice when a stale one was replaced."""
    path = run_dir / LOCK
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "slurm_job": os.environ.get("SLURM_JOB_ID", ""), "started": _now()}
    notice = ""
    for _ in range(3):
        tmp = path.with_name(f"{LOCK}.{owner['pid']}")
        try:
            tmp.write_text(json.dumps(owner) + "\n")
            os.link(tmp, path)  # atomic: fails if a lock exists, and a lock is never half written
            lock = Lock(path, owner)
            lock.start_heartbeat()
            return lock, notice
        except FileExistsError:
            held = _read_json(path)
            why = _stale(held, path, owner)
            if not why:
                raise UsageError(
                    f"{run_dir}: another trainer (pid {held.get('pid')} on {held.get('host')}) is training in this run folder; "
                    f"wait for it or stop it (a lock not refreshed for {STALE_S:.0f} s is taken over)"
                ) from None
            path.unlink(missing_ok=True)
            notice = f"took over the lock of pid {held.get('pid')} on {held.get('host')} ({why})"
        except OSError as e:
            raise UsageError(f"{run_dir}: cannot write there ({e.strerror}); choose a writable place") from None
        finally:
            tmp.unlink(missing_ok=True)
    raise UsageError(f"{run_dir}: could not take {path}; another trainer keeps starting there")


def live_owner(run_dir: Path) -> dict[str, Any] | None:
    """The lock's owner while a trainer uses `run_dir` now (a lock that is not stale), else None."""
    path = run_dir / LOCK
    if not path.exists():
        return None
    held = _read_json(path)
    me = {"pid": os.getpid(), "host": socket.gethostname(), "slurm_job": os.environ.get("SLURM_JOB_ID", "")}
    return None if _stale(held, path, me) else held


def _stale(held: dict[str, Any], path: Path, me: dict[str, Any]) -> str:
    """Why the lock `held` is stale, or "" if its owner may still be training."""
    try:
        age = time.time() - path.stat().st_mtime
    except OSError:
        return "gone"
    if age > STALE_S:
        return f"not refreshed for {age:.0f} s"
    if me["slurm_job"] and held.get("slurm_job") == me["slurm_job"]:
        return f"an earlier run of SLURM job {me['slurm_job']}"
    if held.get("host") == me["host"] and isinstance(held.get("pid"), int):
        try:
            os.kill(held["pid"], 0)
        except ProcessLookupError:
            return "its process is gone"
        except PermissionError:
            return ""
    return ""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


if __name__ == "__main__":  # `python -m fastgan.run.folder DIR`: exit 2 while a trainer uses DIR (scripts/quickstart.sh)
    import sys

    owner = live_owner(Path(sys.argv[1]))
    if owner:
        who = f"pid {owner.get('pid')} on {owner.get('host')}"
        sys.exit(f"error: {sys.argv[1]}: a trainer ({who}) is training there; wait for it or stop it")
