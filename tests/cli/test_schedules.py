"""Schedules through the real CLI: metrics.jsonl and TensorBoard hold each scheduled value, a resume in the middle
of the schedules continues bitwise as if never stopped, and a resume may change an lr schedule but
not a gamma one."""

from __future__ import annotations

import json
import math
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from tests.support import REPO, run, train

# tiny_config: 16 images per step, logs and checkpoints every 64; every curve still moving at 128 and 192
SCHEDULES = (
    "loss.r1_gamma=0.1", "loss.reg_every=2", "augment.policy=translation,cutout", "augment.p=0.0",
    "schedule.lr_G.end=5e-5", "schedule.lr_G.length_images=256",
    "schedule.lr_D.warmup_images=32", "schedule.lr_D.end=5e-5", "schedule.lr_D.length_images=256",
    "schedule.beta2_D.start=0.9", "schedule.beta2_D.end=0.99", "schedule.beta2_D.shape=linear", "schedule.beta2_D.length_images=256",
    "schedule.r1_gamma.end=0.01", "schedule.r1_gamma.length_images=256",
    "schedule.ema_halflife_images.start=0", "schedule.ema_halflife_images.end=1000", "schedule.ema_halflife_images.length_images=256",
    "schedule.augment_p.end=0.55", "schedule.augment_p.length_images=256",
)  # fmt: skip


def rows(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def cosine(start: float, end: float, nimg: int, length: int) -> float:
    return start + (end - start) * (1 - math.cos(math.pi * min(nimg / length, 1.0))) / 2


def test_metrics_jsonl_holds_each_scheduled_value(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = train(cli, tiny_config, tmp_path / "run", *SCHEDULES)
    records = rows(out)
    assert [r["nimg"] for r in records] == [64, 128]
    for r in records:
        n = r["nimg"]
        assert r["lr_G"] == cosine(2e-4, 5e-5, n, 256)
        assert r["lr_D"] == 2e-4 + (5e-5 - 2e-4) * (1 - math.cos(math.pi * (n - 32) / (256 - 32))) / 2  # after its warm-up
        assert r["beta2_D"] == 0.9 + (0.99 - 0.9) * n / 256
        assert r["r1_gamma"] == cosine(0.1, 0.01, n, 256)
        assert r["ema_halflife_images"] == cosine(0.0, 1000.0, n, 256)
        assert r["augment_p"] == cosine(0.0, 0.55, n, 256)
        assert "beta2_G" not in r and "r2_gamma" not in r  # only what is scheduled
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("lr_G")] == [(r["nimg"], pytest.approx(r["lr_G"])) for r in records]
    plain = rows(train(cli, tiny_config, tmp_path / "plain"))
    assert not {"lr_G", "lr_D", "beta2_D", "r1_gamma", "ema_halflife_images", "augment_p"} & set(plain[0])


def test_resume_in_the_middle_of_the_schedules_is_bitwise(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    """128 images then 64 more, resumed, gives bitwise the same weights and Adam state as 192 straight."""
    straight = train(cli, tiny_config, tmp_path / "straight", *SCHEDULES, "train.total_images=192")
    resumed = train(cli, tiny_config, tmp_path / "resumed", *SCHEDULES)
    code, text = run(cli, "train", "--resume", resumed, "--set", "train.total_images=192")
    assert code == 0, text
    a = torch.load(straight / "checkpoints" / "nimg-000000192" / "state.pt", weights_only=True)
    b = torch.load(resumed / "checkpoints" / "nimg-000000192" / "state.pt", weights_only=True)
    for net in ("G", "D", "G_ema"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k}"
    for opt in ("opt_G", "opt_D"):
        assert a[opt]["param_groups"] == b[opt]["param_groups"]  # the scheduled lr and betas of the last step
        for i, state in a[opt]["state"].items():
            assert all(torch.equal(v, b[opt]["state"][i][k]) for k, v in state.items()), f"{opt}[{i}]"
    assert torch.equal(a["augment"]["p"], b["augment"]["p"])
    timing = ("time_s", "images_per_s", "sample_diversity")  # the last: a grid's, carried to the next row within a session
    last_straight, last_resumed = ({k: v for k, v in rows(d)[-1].items() if k not in timing} for d in (straight, resumed))
    assert last_straight == last_resumed  # losses and the logged schedule values alike


def test_a_resume_may_change_an_lr_schedule_but_not_a_gamma_one(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = train(cli, tiny_config, tmp_path / "run", *SCHEDULES)
    code, text = run(cli, "train", "--resume", out, "--set", "schedule.r1_gamma.end=0.05", "--set", "train.total_images=192")
    assert code == 2 and "schedule.r1_gamma.end (0.01 -> 0.05) cannot change when resuming" in text, text
    code, text = run(cli, "train", "--resume", out, "--set", "schedule.lr_G.end=1e-5", "--set", "train.total_images=192")
    assert code == 0 and "schedule.lr_G.end 5e-05 -> 1e-05" in text, text
    assert rows(out)[-1]["lr_G"] == cosine(2e-4, 1e-5, 192, 256)  # the new curve, from the resume on


def test_dry_run_shows_each_schedule_as_docs_schedules_md_says(tmp_path: Path) -> None:
    """The console block of docs/schedules.md, run as written (the preset needs no data for a dry run)."""
    block = (REPO / "docs" / "schedules.md").read_text().split("```console\n", 1)[1].split("```", 1)[0]
    command, *expected = block.strip().splitlines()
    argv = shlex.split(command.removeprefix("$ ").removesuffix(" > /dev/null"))
    assert argv[0] == "fastgan"
    done = subprocess.run([sys.executable, "-m", "fastgan", *argv[1:]], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == expected
    assert "start = -1.0\nend = 1e-05\n" in done.stdout.split("[schedule.lr_G]")[1]  # the --set took
