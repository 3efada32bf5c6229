"""A run moves between a CPU and a GPU: CPU (Mersenne Twister) and CUDA (Philox) generator states
differ in size, so the latent and flip generators are re-seeded with one notice, not a crash.

Runs on a machine with a CUDA GPU (pytest -m gpu); APIs as of torch 2.11.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fastgan.run import checkpoint as ckpt
from tests.support import REPO

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]


def train(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "fastgan", "train", *args], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.parametrize(("first", "then"), [("true", "false"), ("false", "true")], ids=["cpu-to-cuda", "cuda-to-cpu"])
def test_a_run_resumes_on_the_other_device_type(tiny_config: Path, tmp_path: Path, first: str, then: str) -> None:
    out = tmp_path / "run"
    # 2 steps of the global batch of 16, then 2 more on the other device
    started = train(
        str(tiny_config), "--out", str(out), "--set", f"train.cpu={first}", "--set", "train.total_images=32", "--set", "data.hflip=true"
    )
    assert ("on cpu" in started.stderr) == (first == "true"), started.stderr[-2000:]
    resumed = train("--resume", str(out), "--set", f"train.cpu={then}", "--set", "train.total_images=64")
    notices = [line for line in resumed.stderr.splitlines() if "notice:" in line]
    assert len(notices) == 1 and "the latent generator" in notices[0] and "re-seeded" in notices[0], resumed.stderr[-2000:]
    state = torch.load(out / "checkpoints" / ckpt.checkpoint_name(64) / "state.pt", map_location="cpu", weights_only=True)
    assert state["device_type"] == ("cpu" if then == "true" else "cuda")
    for net in ("G", "D", "G_ema"):
        assert all(torch.isfinite(v).all() for v in state[net].values() if v.is_floating_point()), net
