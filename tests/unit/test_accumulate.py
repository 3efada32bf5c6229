"""Gradient accumulation (train.accumulate): k micro-batches per phase and one optimizer step give
the same training as one batch (models without BatchNorm), lazy R1/R2 included; a k that does not
divide the batch is one line; a resume may change k. tests/distributed/test_accumulate_ddp.py
checks 2 processes against 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fastgan.train.build import Trainer
from tests.support import make, params, run, steps, train

# R3GAN's nets (no BatchNorm, no dropout) at toy width, on the tiny 28 px array, batch 128
R3GAN = (
    "model.name=r3gan", "model.r3gan.stage_widths=[8, 8, 8]", "model.r3gan.stage_blocks=[1, 1, 1]", "model.r3gan.group_channels=8",
    "model.z_dim=16", "loss.name=rpgan", "loss.r1_gamma=1.0", "loss.r2_gamma=1.0", "train.batch_size=128",
    "optim.G.betas=[0.0, 0.99]", "optim.D.betas=[0.0, 0.99]",
)  # fmt: skip


def trained(config: Path, k: int, *overrides: str, n: int = 3) -> tuple[Trainer, list[int]]:
    """A trainer after n steps with train.accumulate = k, and the batch sizes D's forwards saw."""
    trainer = make(config, *R3GAN, *overrides, f"train.accumulate={k}")
    seen: list[int] = []
    D_run = trainer.step.D.run

    def spy(images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        seen.append(images.shape[0])
        return D_run(images, labels)

    trainer.step.D.run = spy
    steps(trainer, n)
    return trainer, seen


@pytest.mark.parametrize("reg", ["loss.reg_every=2", "loss.reg_every=1"], ids=["lazy-r1r2", "r1r2-in-every-step"])
def test_two_micro_batches_train_as_one_batch(tiny_config: Path, reg: str) -> None:
    one, seen_one = trained(tiny_config, 1, reg)
    two, seen_two = trained(tiny_config, 2, reg)
    assert set(seen_one) == {128} and set(seen_two) == {64}  # k = 2 really ran on halves
    assert two.cur_nimg == one.cur_nimg == 3 * 128  # images seen mean the same
    for net in ("G", "D", "G_ema"):
        a, b = params(getattr(one, net)), params(getattr(two, net))
        for name in a:
            torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=2e-5, msg=f"{net}.{name}")
    for net in ("G", "D"):  # the last phase's gradients themselves: Adam alone would hide a gradient k times too large
        for p1, p2 in zip(getattr(one, net).parameters(), getattr(two, net).parameters(), strict=True):
            if p1.grad is not None:
                torch.testing.assert_close(p2.grad, p1.grad, rtol=1e-3, atol=1e-6)
    s1, s2 = (t.step.stats.read(lambda x: x, lambda x: x) for t in (one, two))
    for key in ("loss_D", "loss_G", "penalty_reg" if reg.endswith("2") else "penalty_D"):
        assert s2[key] == pytest.approx(s1[key], rel=1e-4, abs=1e-6), key  # statistics are whole-batch means too


def test_micro_batches_take_one_optimizer_step_per_phase(tiny_config: Path) -> None:
    trainer = make(tiny_config, *R3GAN, "loss.reg_every=2", "train.accumulate=4")
    steps(trainer, 2)  # 2 D phases, 1 lazy pass (after the 2nd), 2 G phases
    state_D = trainer.step.D.opt.state[next(iter(trainer.step.D.trainable))]
    state_G = trainer.step.G.opt.state[next(iter(trainer.step.G.trainable))]
    assert int(state_D["step"]) == 3 and int(state_G["step"]) == 2


def test_accumulate_that_does_not_divide_the_batch_is_one_line(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, text = run(cli, "train", tiny_config, "--out", out, "--set", "train.accumulate=3")
    assert code == 2 and "train.accumulate = 3 must divide" in text and len(text.strip().splitlines()) == 1, text
    assert not out.exists()
    code, text = run(cli, "train", tiny_config, "--out", out, "--set", "train.accumulate=0")
    assert code == 2 and "train.accumulate = 0: must be at least 1" in text and not out.exists()


def test_a_resume_may_change_accumulate(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    """Allowed (fastgan.run.resume_rules): the same gradient of the same batch, counted in images."""
    out = train(cli, tiny_config, tmp_path / "run")
    code, text = run(cli, "train", "--resume", out, "--set", "train.accumulate=2", "--set", "train.total_images=192")
    assert code == 0, text
    resume = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines() if '"resume"' in line][-1]
    assert resume["changed"]["train.accumulate"] == [1, 2]
    assert [json.loads(line)["nimg"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [64, 128, 192]
