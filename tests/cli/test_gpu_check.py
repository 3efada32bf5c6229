"""scripts/gpu-check.sh --cpu: the GPU check's whole flow at tiny sizes, so the script cannot rot
before a GPU runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, needs_fashion


@pytest.mark.slow
@needs_fashion
def test_gpu_check_cpu_mode_runs_every_stage_and_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "check"
    env = dict(os.environ, PYTHON=sys.executable)
    proc = subprocess.run(
        ["bash", "scripts/gpu-check.sh", "--cpu", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all((out / f).stat().st_size < 16 * 2**20 for f in files)
    assert {"summary.md", "log.txt", "junit.xml", "bench.json", "details.json", "samples.png"} <= set(files)
    summary = (out / "summary.md").read_text()
    for stage in ("pytest -m gpu", "bench: dcgan28", "bench: dcgan 64 px", "train ~1 min + eval", "tutorial loop", "DALI vs DataLoader"):
        assert stage in summary
    # GPU-only parts are skipped with their reasons, not dropped
    assert "needs a CUDA GPU" in summary and "CUDA graphs need a GPU" in summary and "GPU-only" in summary
    bench = json.loads((out / "bench.json").read_text())
    ran = [r for ladder in bench.values() for r in ladder["rungs"] if r.get("images_per_s")]
    assert ran and all(r["launches_per_step"] > 0 and r["launches_outside_models"] is not None for r in ran)
    details = json.loads((out / "details.json").read_text())
    assert details["train_eval"]["train_exit"] == 0 and details["train_eval"]["eval"]["metrics"]["fd"] > 0
    assert [s["status"] for s in details["stages"]].count("FAIL") == 0
