"""The real `fastgan` CLI with one fault injected at a chosen point, for the multi-process tests:

    FASTGAN_FAULT=ACTION@NIMG:RANK python tests/distributed/fault_cli.py train ...

After the first step that reaches NIMG images, process RANK does ACTION once, on the first
launch only (a torchrun restart or a relaunch without the variable trains cleanly):

    kill      SIGKILL itself (a crash)          term, int   SIGTERM / SIGINT to itself
    stop      SIGSTOP itself (a stalled peer)   term-launcher, int-launcher   to its parent launcher
    hang      its main thread blocks for good, as a host waiting in a CUDA sync on an NCCL
              collective that never ends: signal handlers run, but the loop never gets back

With `FASTGAN_FAULT_DIR` set, the faulty process writes `fault.json` (its pid, the time) there
first, so a test can end a stopped process, and every process writes `exit-rank<R>.json` (its
exit code, the time) when it exits, also through the `os._exit` of fastgan's watchdog.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import NoReturn

ACTIONS = {
    "hang": (0, False),
    "kill": (signal.SIGKILL, False),
    "term": (signal.SIGTERM, False),
    "int": (signal.SIGINT, False),
    "stop": (signal.SIGSTOP, False),
    "term-launcher": (signal.SIGTERM, True),
    "int-launcher": (signal.SIGINT, True),
}


def record(name: str, obj: dict) -> None:
    if "FASTGAN_FAULT_DIR" in os.environ:
        Path(os.environ["FASTGAN_FAULT_DIR"], name).write_text(json.dumps(obj))


def install(spec: str) -> None:
    from fastgan.train.build import Trainer

    action, rest = spec.split("@")
    nimg, rank = (int(x) for x in rest.split(":"))
    signum, to_launcher = ACTIONS[action]
    plain = Trainer.train_step
    fired: list[bool] = []

    def train_step(self: Trainer, data: object) -> None:
        plain(self, data)  # type: ignore[arg-type]
        if not fired and self.cur_nimg >= nimg and self.accelerator.process_index == rank:
            fired.append(True)
            record("fault.json", {"pid": os.getpid(), "time": time.time()})
            if not signum:
                threading.Event().wait()  # hang
            os.kill(os.getppid() if to_launcher else os.getpid(), signum)

    Trainer.train_step = train_step  # type: ignore[method-assign]


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root
    spec = os.environ.get("FASTGAN_FAULT", "")
    if spec and os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") == "0":
        install(spec)
    from fastgan.cli import main

    real_exit = os._exit

    def exit_now(status: int) -> NoReturn:  # fastgan's watchdog ends a blocked process this way
        record(f"exit-rank{os.environ.get('RANK', '0')}.json", {"code": status, "time": time.time()})
        real_exit(status)

    os._exit = exit_now
    sys.argv[0] = "fastgan"
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        record(f"exit-rank{os.environ.get('RANK', '0')}.json", {"code": code, "time": time.time()})
        raise
