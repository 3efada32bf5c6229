"""Schedules under 2-process DDP (gloo on the CPU, as tests/distributed/test_ddp.py): every process
sets the same values, and they are the values of one process at the same global batch, because
images seen counts the whole global batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.distributed.test_ddp import worker

pytestmark = pytest.mark.ddp

MLP = ("model.name=mlp", "model.mlp.g_hidden=[32, 64]", "model.mlp.d_hidden=[64, 32]", "model.mlp.d_dropout=0.0")
SCHEDULES = (
    "schedule.lr_G.end=5e-5", "schedule.lr_G.length_images=128",
    "schedule.lr_D.warmup_images=32", "schedule.lr_D.end=5e-5", "schedule.lr_D.length_images=128",
    "schedule.beta2_G.end=0.9", "schedule.beta2_G.length_images=128",
    "schedule.ema_halflife_images.start=0", "schedule.ema_halflife_images.end=1000", "schedule.ema_halflife_images.length_images=128",
)  # fmt: skip


def test_two_processes_schedule_as_one(tiny_config: Path, tmp_path: Path) -> None:
    r0, r1 = worker(tiny_config, tmp_path / "two", 5, *MLP, *SCHEDULES, port=29561)  # 80 of the schedules' 128 images
    (one,) = worker(tiny_config, tmp_path / "one", 5, *MLP, *SCHEDULES, processes=1)
    assert r0["world"] == r1["world"] == 2 and one["world"] == 1
    assert set(one["schedules"]) == {"lr_G", "lr_D", "beta2_G", "ema_halflife_images"}
    assert one["schedules"]["lr_G"] < 2e-4 and one["schedules"]["beta2_G"] < 0.999  # the curves have moved
    ((lr_G, betas_G),) = one["adam"]["G"]  # set before the last step, at 64 images: halfway along both cosines
    assert lr_G == pytest.approx((2e-4 + 5e-5) / 2) and betas_G[1] == pytest.approx((0.999 + 0.9) / 2)
    assert r0["schedules"] == r1["schedules"] == one["schedules"]
    assert r0["adam"] == r1["adam"] == one["adam"]  # what the last step's Adam ran with, exactly
    for net in ("G", "D", "G_ema"):
        for k in one[net]:
            assert torch.equal(r0[net][k], r1[net][k]), f"{net}.{k} differs across processes"
            torch.testing.assert_close(r0[net][k], one[net][k], rtol=1e-4, atol=1e-5, msg=f"{net}.{k}")
