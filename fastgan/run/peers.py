"""A stalled or dead peer ends the job with one line per surviving process (exit code 5).

Every collective waits at most `train.timeout_s` (Accelerate's InitProcessGroupKwargs for the
main group, the same for the stop group). The loop names the stage it is in, so that a timeout
says which operation waited and for how long. Gloo raises a RuntimeError ("Timed out waiting
...", "Connection closed by peer"); NCCL's watchdog aborts the process itself and prints the
collective that timed out, so only gloo's errors pass through here.
"""

from __future__ import annotations

import time

import torch.distributed as dist

from fastgan.errors import PeerFailure

_TIMEOUT = ("Timed out", "timed out", "Timeout")
_PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "Connection refused")


class PeerWatch:
    """What the loop is doing now, and since when (host clock; set a few times per step, no sync),
    so that a collective that fails can be told as one line: which stage waited, for how long."""

    def __init__(self, rank: int, num_processes: int, timeout_s: float) -> None:
        self.rank, self.num_processes, self.timeout_s = rank, num_processes, timeout_s
        self.name, self.since = "starting", time.monotonic()

    def enter(self, name: str) -> None:
        self.name, self.since = name, time.monotonic()

    def failure(self, e: BaseException) -> PeerFailure | None:
        """`e` as a PeerFailure if a collective timed out or lost a peer, else None."""
        if self.num_processes == 1 or not isinstance(e, RuntimeError):
            return None
        text = str(e)
        waited = time.monotonic() - self.since
        where = f"rank {self.rank}: {self.name}"
        if any(p in text for p in _TIMEOUT):
            return PeerFailure(
                f"{where} timed out after {waited:.0f} s waiting for the other processes (train.timeout_s = {self.timeout_s:g}): "
                "one of them stalled or died; relaunch with --auto-resume to continue from the newest checkpoint"
            )
        if isinstance(e, dist.DistBackendError) or any(p in text for p in _PEER_GONE):
            return PeerFailure(
                f"{where} failed after {waited:.0f} s: another process died ({text.splitlines()[0][-120:]}); "
                "relaunch with --auto-resume to continue from the newest checkpoint"
            )
        return None
