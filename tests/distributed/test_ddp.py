"""Real 2-process DDP over gloo on the CPU, through `accelerate launch` (launch/cpu-ddp.yaml): the
processes stay bitwise identical (also under the R3GAN recipe: the relativistic G phase, lazy R1/R2
as their own D step through the DDP module, ADA's p reduced across processes), 2 processes match
1 at the same global batch, the CLI writes once, in-training eval does not deadlock, and a dataset is
downloaded by the main process alone.

`accelerate launch --cpu --num_processes 2` would silently run one process; the config uses
MULTI_GPU, which with no GPU gives gloo DDP because fastgan passes cpu=True to Accelerate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fastgan.augment import ADJUST_EVERY
from tests.support import REPO

pytestmark = pytest.mark.ddp
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(REPO / "launch" / "cpu-ddp.yaml")]


def launch(args: list[str], processes: int = 2, port: int = 29517) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [*LAUNCH, "--num_processes", str(processes), "--main_process_port", str(port), *args]
    if processes == 1:  # one process: the same code path without DDP
        cmd = [sys.executable, *args[args.index("-m") :]] if "-m" in args else [sys.executable, *args]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def worker(config: Path, out: Path, steps: int, *overrides: str, processes: int = 2, port: int = 29517) -> list[dict]:
    launch([str(REPO / "tests" / "distributed" / "ddp_worker.py"), str(config), str(out), str(steps), *overrides], processes, port)
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(processes)]


def test_two_processes_stay_bitwise_identical_with_batchnorm(tiny_config: Path, tmp_path: Path) -> None:
    """dcgan28 has BatchNorm in G and D, and D scores real and generated batches separately."""
    r0, r1 = worker(tiny_config, tmp_path / "bn", 6, "model.dcgan.width=4", port=29521)
    assert r0["world"] == r1["world"] == 2
    for net in ("G", "D"):
        for k in r0[net]:
            assert torch.equal(r0[net][k], r1[net][k]), f"{net}.{k} differs across processes"
    for k, v in r0["G_ema"].items():
        if "running" not in k and "num_batches" not in k:  # statistics are synced at maintenance points
            assert torch.equal(v, r1["G_ema"][k]), f"G_ema.{k} differs across processes"
    assert r0["stats"]["loss_D"] == r1["stats"]["loss_D"]  # metrics are reduced over processes


def test_two_processes_match_one_with_the_same_global_batch(tiny_config: Path, tmp_path: Path) -> None:
    """Without BatchNorm or dropout, DDP's averaged gradients equal one process's on the whole batch."""
    overrides = ("model.name=mlp", "model.mlp.g_hidden=[32, 64]", "model.mlp.d_hidden=[64, 32]", "model.mlp.d_dropout=0.0")
    (two, _) = worker(tiny_config, tmp_path / "two", 5, *overrides, port=29523)
    (one,) = worker(tiny_config, tmp_path / "one", 5, *overrides, processes=1)
    assert two["world"] == 2 and one["world"] == 1
    for net in ("G", "D", "G_ema"):
        for k in one[net]:
            torch.testing.assert_close(two[net][k], one[net][k], rtol=1e-4, atol=1e-5, msg=f"{net}.{k}")


def test_cli_under_accelerate_launch_writes_once(tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = launch(["-m", "fastgan", "train", str(tiny_config), "--out", str(out)], port=29525)
    assert "2 process(es)" in result.stderr
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["nimg"] for r in records] == [64, 128]  # logged by the main process only
    ckpt = out / "checkpoints" / "nimg-000000128"
    assert {p.name for p in ckpt.iterdir()} == {"state.pt", "rng-rank0.pt", "rng-rank1.pt", "config.toml"}
    # resume on 2 processes continues from the checkpoint
    launch(["-m", "fastgan", "train", "--resume", str(out), "--set", "train.total_images=192"], port=29527)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["nimg"] for r in records] == [64, 128, 192]


@pytest.mark.usefixtures("feature_cache")  # the launched processes inherit its FASTGAN_CACHE: not the user's cache
def test_in_training_eval_under_two_processes(tiny_config: Path, tmp_path: Path) -> None:
    """Only the main process evaluates and the others wait for it: no deadlock, one record per eval.
    (It also runs the feature net on Accelerate's gloo device "cpu:0".)"""
    out = tmp_path / "run"
    launch(
        ["-m", "fastgan", "train", str(tiny_config), "--out", str(out), "--set", "train.eval_every=64", "--set", "train.eval_samples=50"],
        port=29541,
    )
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["nimg"] for r in records if "fd" in r] == [64, 128]
    assert json.loads((out / "best.json").read_text())["checkpoint"] is not None


@pytest.mark.usefixtures("feature_cache")
def test_the_main_process_downloads_while_the_others_wait(tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The training split (the run) and the test split (in-training eval) are each downloaded once,
    by the main process, and the other process opens them only after it. torchvision's CIFAR10 is
    a fake that downloads nothing (tests/distributed/offline_cli.py)."""
    log = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FASTGAN_FAKE_LOG", str(log))
    data = ("data.source=cifar10", f"data.root={tmp_path / 'data'}")
    sets = (*data, "data.download=true", "train.eval_every=128", "train.eval_samples=50")
    args = [str(REPO / "tests" / "distributed" / "offline_cli.py"), "train", str(tiny_config), "--out", str(tmp_path / "run")]
    # Without the data and without download: the main process's one line (torchrun ends the other
    # process as soon as one exits, so the exit codes it reports depend on which exits first).
    cmd = [*LAUNCH, "--num_processes", "2", "--main_process_port", "29553", *args]
    cmd += [x for s in (*data, "data.download=false") for x in ("--set", s)]
    refused = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert refused.returncode != 0 and refused.stderr.count("error: data.source = 'cifar10'") == 1, refused.stderr[-3000:]
    assert not log.exists() and not (tmp_path / "run").exists()
    launch([*args, *(x for s in sets for x in ("--set", s))], port=29551)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    for train in (True, False):
        first, *rest = sorted((c for c in calls if c["train"] is train), key=lambda c: c["start"])
        assert (first["rank"], first["downloaded"]) == (0, True), calls
        assert [c["rank"] for c in rest] == [1] and not rest[0]["downloaded"], calls
        assert rest[0]["start"] >= first["end"], calls


# ---------------------------------------------------------------------------- the R3GAN recipe

RECIPE = (
    "model.name=r3gan", "model.r3gan.stage_widths=[8, 8, 8]", "loss.name=rpgan", "loss.r1_gamma=0.5", "loss.r2_gamma=0.5",
    "loss.reg_every=2", "augment.policy=color,translation,cutout", "augment.target=0.6", "augment.p=0.0", "augment.speed_images=2000",
)  # fmt: skip


def test_lazy_r1_r2_and_ada_keep_processes_identical(tiny_config: Path, tmp_path: Path) -> None:
    r0, r1 = worker(tiny_config, tmp_path / "r3", 8, *RECIPE, port=29527)  # 4 penalty steps, 2 ADA adjustments
    assert r0["world"] == r1["world"] == 2
    for net in ("G", "D", "G_ema"):
        for k in r0[net]:
            assert torch.equal(r0[net][k], r1[net][k]), f"{net}.{k} differs across processes"
    assert torch.equal(r0["augment"]["p"], r1["augment"]["p"])  # one p for all: r is summed over processes
    assert r0["stats"]["penalty_reg_total"] > 0


def test_a_resume_restores_the_total_of_every_process_ada_sum(tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each process sums sign(D(real)) over its own images between adjustments: a checkpoint keeps
    the total, not the main process's sum for every process to load."""
    monkeypatch.setenv("DDP_WORKER_RESTORE", "1")
    ada = ["augment.policy=translation", "augment.target=0.6", "augment.p=0.0", "augment.speed_images=2000"]
    ada.append("optim.D.lr=1e-7")  # D stays near its random start: D(real) takes either sign, so the processes' sums differ
    r0, r1 = worker(tiny_config, tmp_path / "ada", ADJUST_EVERY + 2, *ada, port=29555)  # 2 D steps into a window
    assert not torch.equal(r0["ada_sum"], r1["ada_sum"])  # each process's own, else the test shows nothing
    restored = r0["restored"]["ada_sum"] + r1["restored"]["ada_sum"]
    assert torch.equal(restored, r0["ada_sum"] + r1["ada_sum"]), (restored, r0["ada_sum"], r1["ada_sum"])
    assert r0["restored"]["augment"]["steps"] == r1["restored"]["augment"]["steps"] == 2
