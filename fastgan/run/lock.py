"""`.fastgan-lock`: one trainer at a time in a run folder.

The lock (JSON: pid, host, SLURM job) is made by a hard link, so it is atomic and never half
written. Its owner refreshes it every HEARTBEAT_S; it is stale when its process is gone (same
host), when it belongs to an earlier run of the same SLURM job (a requeue), or after STALE_S
without refresh, and then it is taken over with a notice.

`python -m fastgan.run.lock DIR` exits 2 while a trainer uses DIR (scripts/quickstart.sh asks
it before it moves a previous run aside).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastgan import files
from fastgan.errors import UsageError
from fastgan.run.folder import now

LOCK = ".fastgan-lock"
HEARTBEAT_S = 30.0
STALE_S = 300.0


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
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "slurm_job": os.environ.get("SLURM_JOB_ID", ""), "started": now()}
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
                raise UsageError(held_message(run_dir, held)) from None
            path.unlink(missing_ok=True)
            notice = f"took over the lock of pid {held.get('pid')} on {held.get('host')} ({why})"
        except OSError as e:
            raise UsageError(f"{run_dir}: cannot write there ({e.strerror}); choose a writable place") from None
        finally:
            tmp.unlink(missing_ok=True)
    raise UsageError(f"{run_dir}: could not take {path}; another trainer keeps starting there")


def held_message(run_dir: Path, held: dict[str, Any]) -> str:
    return (
        f"{run_dir}: another trainer (pid {held.get('pid')} on {held.get('host')}) is training in this run folder; "
        f"wait for it or stop it (a lock not refreshed for {STALE_S:.0f} s is taken over)"
    )


def refuse_if_held(run_dir: Path) -> None:
    """Before anything reads a run's checkpoints to continue it: while another trainer uses the
    folder, the lock's message (exit 2), whatever the config, so that nobody is told the run is
    done, or that a checkpoint the live trainer just pruned cannot be loaded."""
    held = live_owner(run_dir)
    if held is not None:
        raise UsageError(held_message(run_dir, held))


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
    if held.get("host") == me["host"] and isinstance(held.get("pid"), int) and not files.process_alive(held["pid"]):
        return "its process is gone"
    return ""


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


if __name__ == "__main__":  # `python -m fastgan.run.lock DIR`: exit 2 while a trainer uses DIR (scripts/quickstart.sh)
    import sys

    owner = live_owner(Path(sys.argv[1]))
    if owner:
        who = f"pid {owner.get('pid')} on {owner.get('host')}"
        sys.exit(f"error: {sys.argv[1]}: a trainer ({who}) is training there; wait for it or stop it")
