"""A stalled peer over NCCL: the surviving process says fastgan's one line (exit 5) before NCCL's
watchdog, set COLLECTIVE_MARGIN_S later, would abort it (SIGABRT, its own message). The same
mechanism runs on the CPU in tests/unit/test_peers.py and with 2 gloo processes in
tests/distributed/test_resilience.py; this needs 2 CUDA GPUs (one GPU cannot host 2 NCCL ranks).

Runs on a machine with 2 or more CUDA GPUs (pytest -m gpu); APIs as of torch 2.11.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fastgan.train.setup import COLLECTIVE_MARGIN_S
from tests.support import FAULT_CLI, REPO

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs (NCCL)")]
MLP = ("model.name=mlp", "model.mlp.g_hidden=[32, 64]", "model.mlp.d_hidden=[64, 32]", "model.mlp.d_dropout=0.0")


@pytest.mark.parametrize("fault", ["stop@96:1", "hang@96:1"], ids=["sigstopped-peer", "host-blocked-peer"])
def test_a_stalled_nccl_peer_ends_the_job_with_fastgans_line(tiny_config: Path, tmp_path: Path, fault: str) -> None:
    run, record, log = tmp_path / "run", tmp_path / "record", tmp_path / "stderr.txt"
    record.mkdir()
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--mixed_precision", "no"]
    cmd += ["--dynamo_backend", "no", "--main_process_port", "29561", str(FAULT_CLI), "train", str(tiny_config), "--out", str(run)]
    for o in (*MLP, "train.timeout_s=10", "train.eval_every=0", "train.total_images=320", "train.checkpoint_every=80"):
        cmd += ["--set", o]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore", "FASTGAN_FAULT": fault, "FASTGAN_FAULT_DIR": str(record)}
    with open(log, "w") as err:
        launcher = subprocess.Popen(cmd, env=env, stderr=err, cwd=REPO)
        try:
            deadline = time.monotonic() + 240
            while not (record / "exit-rank0.json").is_file() and time.monotonic() < deadline:
                time.sleep(0.5)
        finally:
            if (record / "fault.json").is_file():
                with contextlib.suppress(ProcessLookupError):  # a blocked host's own watchdog may have ended it
                    os.kill(json.loads((record / "fault.json").read_text())["pid"], signal.SIGKILL)  # the stalled process
            launcher.wait(timeout=120)
    text = log.read_text()
    ended = json.loads((record / "exit-rank0.json").read_text())
    assert ended["code"] == 5, text[-3000:]
    assert ended["time"] - json.loads((record / "fault.json").read_text())["time"] < 10 + COLLECTIVE_MARGIN_S, text[-3000:]
    assert "error: rank 0: " in text and "timed out after 10 s waiting for the other processes" in text, text[-3000:]
    assert "Watchdog caught collective operation timeout" not in text.split("error: rank 0: ")[0], text[-3000:]
