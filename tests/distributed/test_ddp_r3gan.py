"""The R3GAN recipe under real 2-process DDP (gloo, CPU): the relativistic G phase, lazy R1/R2
as their own D step through the DDP module, and ADA's p reduced across processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from .test_ddp import worker

pytestmark = pytest.mark.ddp

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
