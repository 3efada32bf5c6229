"""scripts/gpu-check.sh --cpu: the GPU check's whole flow at tiny sizes, so the script cannot rot
before a GPU runs it."""

from __future__ import annotations

import json
import os
import signal
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
    assert {"summary.md", "log.txt", "junit-recipe.xml", "junit.xml", "bench.json", "details.json"} <= set(files)
    summary = (out / "summary.md").read_text()
    for stage in (
        "recipe on CUDA",
        "headline",
        "grid: Radford DCGAN 64 px",
        "batch scaling",
        "cifar10-r3gan",
        "quickstart recipe",
        "older GPU tests",
    ):
        assert stage in summary
    assert summary.splitlines()[2].startswith("**Headline**: ") and "x**." in summary.splitlines()[2]  # the ratio comes first
    # GPU-only parts are skipped with their reasons, not dropped; what one GPU cannot prove is said
    assert "needs a CUDA GPU" in summary and "CUDA graphs need a GPU" in summary
    assert "multi-process NCCL" in summary.split("## Not proven here")[1]
    bench = json.loads((out / "bench.json").read_text())
    assert {"headline-grid-seed", "grid-dcgan64", "batches-seed", "cifar10-r3gan"} <= set(bench)
    ran = [r for data in bench.values() for r in data["rungs"] if r.get("images_per_s")]
    assert ran and all(r["launches_per_step"] > 0 and r["launches_outside_models"] is not None for r in ran)
    details = json.loads((out / "details.json").read_text())
    assert details["headline"]["ratio"] > 0 and details["quickstart"]["eval"]["metrics"]["fd"] > 0
    assert [s["status"] for s in details["stages"]].count("FAIL") == 0
    assert len(details["stages"]) == 7


# ---------------------------------------------------------------------------- the check's plumbing, with fake stages


def load_check_module():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def check(tmp_path: Path):  # type: ignore[no-untyped-def]
    gpu_check = load_check_module()
    (tmp_path / "out").mkdir()
    c = gpu_check.Check(tmp_path / "out", cpu=True, data=None, budget_s=gpu_check.GPU_BUDGET_S)
    c.grace_s = 1.0
    yield gpu_check, c
    c.log.close()


FAKE_STAGE = """
import signal, sys, time
mode = sys.argv[1]
if mode == "ignore":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
try:
    print("started", flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    print("wrote my report after SIGINT", flush=True)
    sys.exit(130)
"""


def test_a_stage_out_of_time_gets_sigint_first_then_sigkill_after_the_grace(check, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import time

    gpu_check, c = check
    script = tmp_path / "fake_stage.py"
    script.write_text(FAKE_STAGE)
    # Room to spare for the polite one: on a loaded machine its start and its exit can each take
    # seconds, and a SIGINT before its handler exists, or a grace too short, is not what is tested.
    # Started as `cmd &` from a script (no job control), the check has SIGINT ignored, and an
    # ignored signal is inherited across exec: the stage must still get SIGINT as an interrupt.
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        polite = c.run([sys.executable, str(script), "polite"], timeout=10, grace=3)
    finally:
        signal.signal(signal.SIGINT, before)
    assert polite.rc == 130 and polite.stopped == "SIGINT"  # it ended in the grace: no SIGKILL
    t0 = time.monotonic()
    stubborn = c.run([sys.executable, str(script), "ignore"], timeout=4)
    # Not before its budget; the upper bound only catches a kill that never came (it would run
    # forever), with room for a machine under load (a full suite beside a benchmark took > 8 s).
    assert stubborn.stopped == "SIGINT, then SIGKILL" and stubborn.rc == -9 and 3.9 < time.monotonic() - t0 < 30
    log = (c.out / "log.txt").read_text()
    assert "SIGINT after 7 s (stage budget); SIGKILL in 3 s unless it ends" in log
    assert "SIGINT after 3 s (stage budget); SIGKILL in 1 s unless it ends" in log
    assert "wrote my report after SIGINT" in log and log.count("killed after 4 s") == 1


def test_stage_budgets_add_up_to_the_default_and_a_stage_gets_what_earlier_ones_left(check) -> None:  # type: ignore[no-untyped-def]
    gpu_check, c = check
    assert gpu_check.GPU_BUDGET_S <= 330 and sum(s for _, s in gpu_check.STAGES) == gpu_check.GPU_BUDGET_S
    assert sum(s.budget_s for s in c.plan) == pytest.approx(c.budget_s)
    given: list[float] = []

    def fake(stage, budget: float) -> None:  # type: ignore[no-untyped-def]
        given.append(budget)
        stage.status = "pass"

    c.stage(0, fake)
    c.stage(1, fake)  # stage 0 took no time: stage 1 gets its own budget and stage 0's
    assert given[0] == pytest.approx(c.plan[0].budget_s, abs=1)
    assert given[1] == pytest.approx(c.plan[0].budget_s + c.plan[1].budget_s, abs=1)
    c.start -= c.budget_s  # the whole budget is spent: the rest are not run
    c.stage(2, fake)
    assert len(given) == 2 and c.plan[2].status == "not run (budget)"


def test_the_summary_says_what_one_gpu_does_not_prove(check, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    gpu_check, c = check
    monkeypatch.setattr(c, "py", lambda *args: [sys.executable, "-c", "import no_such_module_dali"])  # DALI absent
    c.details["not_proven_here"] = c.not_proven_here()
    c.write_summary()
    summary = (c.out / "summary.md").read_text()
    section = summary.split("## Not proven here")[1]
    assert "DALI: not installed here" in section and "multi-process NCCL" in section and "NCCL stall path" in section
    assert "Headline" in summary.splitlines()[2] and "not measured" in summary.splitlines()[2]  # the first figure of the summary
    for name, _ in gpu_check.STAGES:  # every stage is listed, run or not
        assert name in summary
