"""Post-hoc EMA under 2-process DDP over gloo: every process tracks the same profiles, bitwise, and
they match one process's on the same global batch (their betas count global images)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.distributed.test_ddp import worker

pytestmark = pytest.mark.ddp


def test_two_processes_track_the_same_profiles_as_one(tiny_config: Path, tmp_path: Path) -> None:
    overrides = (
        "model.name=mlp", "model.mlp.g_hidden=[32, 64]", "model.mlp.d_hidden=[64, 32]", "model.mlp.d_dropout=0.0",
        "train.phema_every=64", "train.phema_sigma_rels=[0.05, 0.10]",
    )  # fmt: skip
    r0, r1 = worker(tiny_config, tmp_path / "two", 5, *overrides, port=29561)
    (one,) = worker(tiny_config, tmp_path / "one", 5, *overrides, processes=1)
    assert r0["world"] == 2 and r0["phema"].shape[0] == 2
    assert torch.equal(r0["phema"], r1["phema"])
    assert not torch.equal(r0["phema"][0], r0["phema"][1])
    torch.testing.assert_close(r0["phema"], one["phema"], rtol=1e-4, atol=1e-5)
