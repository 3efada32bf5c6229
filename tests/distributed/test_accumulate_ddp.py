"""Gradient accumulation under real 2-process DDP over gloo (tests/distributed/test_ddp.py says how):
2 processes with train.accumulate = 2 (micro-batches of 4) match 1 process with it (of 8), so
`no_sync` on all but the last micro-batch still all-reduces the whole batch's gradient once."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.distributed.test_ddp import worker

pytestmark = pytest.mark.ddp


def test_two_processes_with_two_micro_batches_match_one(tiny_config: Path, tmp_path: Path) -> None:
    overrides = (
        "model.name=mlp", "model.mlp.g_hidden=[32, 64]", "model.mlp.d_hidden=[64, 32]", "model.mlp.d_dropout=0.0",
        "loss.r1_gamma=1.0", "loss.reg_every=2", "train.accumulate=2",
    )  # fmt: skip
    (two, _) = worker(tiny_config, tmp_path / "two", 4, *overrides, port=29541)
    (one,) = worker(tiny_config, tmp_path / "one", 4, *overrides, processes=1)
    assert two["world"] == 2 and one["world"] == 1
    for net in ("G", "D", "G_ema"):
        for k in one[net]:
            torch.testing.assert_close(two[net][k], one[net][k], rtol=1e-4, atol=1e-5, msg=f"{net}.{k}")
    assert two["stats"]["penalty_reg"] == pytest.approx(one["stats"]["penalty_reg"], rel=1e-4)
