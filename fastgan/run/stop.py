"""Stopping on SIGTERM or SIGINT: every process stops at the same step boundary and saves.

A handler only records the signal. Processes agree on it through an all-reduce (max) of that
number on a CPU gloo side group, started every CHECK_EVERY steps and waited for at the next
check: the collective runs in the background while the steps do, so the step gains no host
sync and no wait. A signal reaches the loop at most 2 x CHECK_EVERY steps later, on every
process, whether it went to one rank or to the launcher (torchrun forwards TERM, INT, HUP and
QUIT to every worker and SIGKILLs them 30 s later: pytorch/pytorch#61602).

Further signals while stopping are ignored (torchrun re-sends the terminal's Ctrl-C): the save
is short. SIGKILL still ends a process at once.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist

from fastgan.train.setup import collective_timeout

CHECK_EVERY = 4  # steps between checks; a stop is agreed within two checks
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopSignals:
    def __init__(self, num_processes: int, timeout_s: float) -> None:
        self.signum = 0  # the first signal received by this process, 0 if none
        self.previous: dict[int, Any] = {}
        self.group: Any = None
        if num_processes > 1:  # every process creates it, in the same order (a collective)
            self.group = dist.new_group(backend="gloo", timeout=collective_timeout(timeout_s))
        self.pending: tuple[Any, torch.Tensor] | None = None
        self.steps = 0

    def __enter__(self) -> StopSignals:
        for s in SIGNALS:
            self.previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        if exc[0] is None:
            self._settle()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.signum:
            self.signum = signum

    def agreed(self) -> int:
        """Call after every step, on every process: the signal all processes stop for, or 0."""
        if self.group is None:
            return self.signum
        self.steps += 1
        if self.steps % CHECK_EVERY:
            return 0
        agreed = self._settle()
        if not agreed:  # start the next check; it runs while the next steps do
            flag = torch.tensor([self.signum], dtype=torch.int32)  # CPU: no device sync
            self.pending = (dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.group, async_op=True), flag)
        return agreed

    def _settle(self) -> int:
        """Wait for the check in flight (started CHECK_EVERY steps ago) and return its result."""
        if self.pending is None:
            return 0
        work, flag = self.pending
        self.pending = None
        work.wait()
        return int(flag.item())  # a CPU tensor: no device sync


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name
