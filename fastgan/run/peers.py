"""A stalled or dead peer ends the job with one line per surviving process (exit code 5).

What ends a stalled job otherwise never reaches Python: NCCL's watchdog aborts the process
(SIGABRT) with a message of its own, and a main thread blocked in a collective or in a CUDA
sync waiting on one does not run the signal handlers through which a launcher's SIGTERM would
stop it at a step boundary (fastgan.run.stop); torchrun and SLURM kill it ~30 s later. So while
a run trains with several processes, `PeerWatch` keeps a watchdog thread on the stage the loop
names (a few host writes per step, no sync). When one stage has lasted `train.timeout_s`, or a
SIGTERM or SIGINT has seen no new stage for STOP_GRACE_S, the thread prints fastgan's one line,
which names the stage and how long it waited, and ends the process with exit code 5
(`os._exit`: the blocked main thread cannot unwind). The backends' own timeouts come
COLLECTIVE_MARGIN_S later (fastgan.train.setup.collective_timeout), so this deadline is first;
gloo errors that come sooner (a dead peer's closed connection) become the same line through
`failure`, in the main thread.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType

import torch.distributed as dist

from fastgan.errors import PeerFailure

_TIMEOUT = ("Timed out", "timed out", "Timeout")
_PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "Connection refused")
# After SIGTERM or SIGINT, the stop (a step boundary agreed by all, then a save) must show
# progress within this: torchrun SIGKILLs 30 s after its SIGTERM (pytorch/pytorch#61602), and so
# does SLURM by default (KillWait).
STOP_GRACE_S = 20.0
_POLL_S = 1.0  # at most this long between the watchdog's looks at the signal pipe
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class PeerWatch:
    """What the loop is doing now, and since when (host clock; set a few times per step, no sync),
    so that a stalled collective can be told as one line: which stage waited, for how long.

    As a context manager with several processes, it runs the watchdog thread; `on_failure` is
    called from that thread just before the process ends (the main process logs the event)."""

    def __init__(
        self,
        rank: int,
        num_processes: int,
        timeout_s: float,
        *,
        on_failure: Callable[[PeerFailure], None] = lambda e: None,
        stop_grace_s: float = STOP_GRACE_S,
    ) -> None:
        self.rank, self.num_processes, self.timeout_s = rank, num_processes, timeout_s
        self.on_failure, self.stop_grace_s = on_failure, stop_grace_s
        self.stage = ("starting", time.monotonic())  # (name, since): one tuple, read whole by the watchdog
        self._said = threading.Lock()  # taken by whichever reports a failure first: one line per process
        self._done = threading.Event()
        self._signal: tuple[int, float] | None = None  # the first stop signal and when it came
        self._thread: threading.Thread | None = None
        self._pipe: tuple[int, int] | None = None
        self._previous_wakeup_fd = -1

    def enter(self, name: str) -> None:
        self.stage = (name, time.monotonic())

    def __enter__(self) -> PeerWatch:
        if self.num_processes > 1:
            read, write = os.pipe()
            os.set_blocking(write, False)
            # Python's C-level handler writes each signal's number here at once, even while the
            # main thread is blocked and its Python handler (fastgan.run.stop) has not run yet.
            self._previous_wakeup_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
            self._pipe = (read, write)
            self._thread = threading.Thread(target=self._watch, name="fastgan-peers", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        if self._thread is None or self._pipe is None:
            return
        self._done.set()
        self._thread.join()
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        for fd in self._pipe:
            os.close(fd)

    def failure(self, e: BaseException) -> PeerFailure | None:
        """`e` as a PeerFailure if a collective timed out or lost a peer, else None."""
        if self.num_processes == 1 or not isinstance(e, RuntimeError):
            return None
        text = str(e)
        name, since = self.stage
        waited = time.monotonic() - since
        if any(p in text for p in _TIMEOUT):
            found = self._timed_out(name, waited)
        elif isinstance(e, dist.DistBackendError) or any(p in text for p in _PEER_GONE):
            found = PeerFailure(
                f"rank {self.rank}: {name} failed after {waited:.0f} s: another process died ({text.splitlines()[0][-120:]}); "
                "relaunch with --auto-resume to continue from the newest checkpoint"
            )
        else:
            return None
        if not self._said.acquire(blocking=False):  # the watchdog said it first and is ending the process
            threading.Event().wait()
        return found

    def _timed_out(self, name: str, waited: float) -> PeerFailure:
        return PeerFailure(
            f"rank {self.rank}: {name} timed out after {waited:.0f} s waiting for the other processes "
            f"(train.timeout_s = {self.timeout_s:g}): one of them stalled or died; "
            "relaunch with --auto-resume to continue from the newest checkpoint"
        )

    def overdue(self, now: float) -> PeerFailure | None:
        """The failure to report at host time `now`, if a deadline has passed."""
        name, since = self.stage
        if now - since >= self.timeout_s:
            return self._timed_out(name, now - since)
        if self._signal is not None:
            signum, at = self._signal
            if now - max(since, at) >= self.stop_grace_s:
                return PeerFailure(
                    f"rank {self.rank}: {name} did not finish within {self.stop_grace_s:.0f} s of {signal.Signals(signum).name}: "
                    "another process stalled or died, so this one cannot stop at a step boundary and save; "
                    "relaunch with --auto-resume to continue from the newest checkpoint"
                )
        return None

    def _watch(self) -> None:
        assert self._pipe is not None
        while not self._done.is_set():
            _, since = self.stage
            due = since + self.timeout_s
            if self._signal is not None:
                due = min(due, max(since, self._signal[1]) + self.stop_grace_s)
            ready, _, _ = select.select([self._pipe[0]], [], [], min(max(due - time.monotonic(), 0.0), _POLL_S))
            if ready:
                for signum in os.read(self._pipe[0], 64):
                    if signum in _STOP_SIGNALS and self._signal is None:
                        self._signal = (signum, time.monotonic())
            found = self.overdue(time.monotonic())
            if found is not None and not self._done.is_set() and self._said.acquire(blocking=False):
                try:
                    self.on_failure(found)
                finally:
                    print(f"{found.prefix}{found}", file=sys.stderr, flush=True)  # as the CLI prints errors
                    os._exit(found.exit_code)
