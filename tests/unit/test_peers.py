"""fastgan's own deadline for a stalled peer (fastgan.run.peers), whatever the backend: when the
main thread is blocked where no error and no signal handler can reach the loop (a CUDA sync on
an NCCL collective that never ends), the watchdog thread says fastgan's one line and ends the
process with exit code 5. Each case runs in a child process, since the watchdog ends its process;
tests/distributed/test_resilience.py shows it with 2 gloo processes, tests/gpu/test_cuda_peers.py
with 2 GPUs over NCCL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.support import REPO

CHILD = """
import sys, threading, time
from fastgan.run.peers import PeerWatch
from fastgan.run.stop import StopSignals

timeout_s, grace_s, mode = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
logged = lambda e: print("logged:", e.exit_code, file=sys.stderr, flush=True)
with PeerWatch(1, 2, timeout_s, on_failure=logged, stop_grace_s=grace_s) as watch, StopSignals(1, timeout_s) as stop:
    if mode == "progress":  # stages that each end in time: no alarm
        for i in range(12):
            watch.enter(f"stage {i}")
            time.sleep(0.25)
    else:
        watch.enter("the training step (its gradient all-reduce)")
        print("blocked", flush=True)
        threading.Event().wait()  # a signal's handler runs (stop.signum is set), then the wait goes on
print("done", stop.signum, flush=True)
"""


def child(timeout_s: float, grace_s: float, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-c", CHILD, str(timeout_s), str(grace_s), mode]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def test_a_stage_past_the_timeout_ends_the_process_with_one_line() -> None:
    proc = child(1.0, 60.0, "block")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 5, err
    assert err.splitlines()[-2:] == [
        "logged: 5",  # the main process logs the event first
        "error: rank 1: the training step (its gradient all-reduce) timed out after 1 s waiting for the other processes "
        "(train.timeout_s = 1): one of them stalled or died; relaunch with --auto-resume to continue from the newest checkpoint",
    ], err
    assert "Traceback" not in err


def test_a_stop_signal_that_cannot_reach_the_loop_ends_the_process_after_the_grace() -> None:
    proc = child(600.0, 1.0, "block")
    assert proc.stdout is not None and proc.stdout.readline() == "blocked\n"
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 5 and time.monotonic() - sent < 10, err
    line = err.splitlines()[-1]
    assert line.startswith("error: rank 1: the training step (its gradient all-reduce) did not finish within 1 s of SIGTERM:"), err


def test_stages_that_end_in_time_raise_no_alarm() -> None:
    proc = child(1.0, 1.0, "progress")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and out.strip() == "done 0", err  # 3 s in all, no stage over 1 s
