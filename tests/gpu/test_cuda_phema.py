"""Post-hoc EMA's tracking on CUDA: the profiles' update makes no host sync (eager and under CUDA
graphs), and it computes what the CPU computes. Run by `scripts/gpu-check.sh`; skipped without a GPU."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from fastgan.train.phema import PowerEMAs
from tests.gpu.test_cuda_step import steps_without_a_sync
from tests.support import make

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

PHEMA = ("train.phema_every=64", "train.phema_sigma_rels=[0.05, 0.10]", "train.batch_size=32")


@pytest.mark.parametrize("compile_mode", ["off", "reduce-overhead"])
def test_phema_steps_make_no_host_sync_on_cuda(tiny_config: Path, compile_mode: str) -> None:
    trainer = make(tiny_config, *PHEMA, f"train.compile={compile_mode}")
    data = iter(trainer.data)
    for _ in range(3):  # reduce-overhead: warm up, record, replay
        trainer.train_step(data)
    steps_without_a_sync(trainer, data, 3)
    flat = trainer.step.phema.flat
    assert flat.is_cuda and bool(torch.isfinite(flat).all())
    assert not torch.equal(flat[0], flat[1])  # two profiles, moving at their own rates


def test_phema_update_on_cuda_matches_the_cpu() -> None:
    G_cpu = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Linear(4, 4))
    G_gpu = copy.deepcopy(G_cpu).cuda()
    on_cpu = PowerEMAs(G_cpu, [0.05, 0.10], images_per_step=16)
    on_gpu = PowerEMAs(G_gpu, [0.05, 0.10], images_per_step=16)
    for step in range(1, 6):
        with torch.no_grad():
            for G in (G_cpu, G_gpu):
                for p in G.parameters():
                    p.add_(0.1 * step)
        on_cpu.update(G_cpu, torch.zeros(()), 16 * step)
        on_gpu.update(G_gpu, torch.zeros((), device="cuda"), 16 * step)
    assert torch.allclose(on_gpu.flat.cpu(), on_cpu.flat, rtol=1e-5, atol=1e-6)
