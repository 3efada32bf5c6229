"""FreezeD under real 2-process DDP over gloo: D's frozen blocks are left out of DDP's all-reduce
(they do not require grad when D is wrapped) and stay as built on every process, while the rest
trains and stays identical across processes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.distributed.test_ddp import worker
from tests.support import make

pytestmark = pytest.mark.ddp


def test_frozen_blocks_stay_put_and_processes_stay_identical(tiny_config: Path, tmp_path: Path) -> None:
    r0, r1 = worker(tiny_config, tmp_path / "frozen", 3, "tricks.freeze_d=2", port=29543)
    assert r0["world"] == r1["world"] == 2
    built = {k: v.detach().cpu() for k, v in make(tiny_config).D.named_parameters()}  # seeded: what every process started from
    frozen = ("body.0.", "body.3.")  # dcgan28's first two convs
    for k, v in r0["D"].items():
        assert torch.equal(v, r1["D"][k]), f"D.{k} differs across processes"
        assert torch.equal(v, built[k]) == k.startswith(frozen), f"D.{k}"
