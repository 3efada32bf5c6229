"""Divergence stops the run with exit code 3; nothing non-finite is ever saved or sampled; the
last good checkpoint survives; non-finite BatchNorm statistics alone are reset at a checkpoint,
not a reason to refuse it; nan/inf settings are refused before anything runs. The warnings
that name why steps were skipped are in unit/test_failure_warnings.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from fastgan.run import checkpoint as ckpt
from tests.support import make, run


def all_finite(path: Path) -> bool:
    return not ckpt.nonfinite_tensors(torch.load(path, weights_only=True))


def test_divergence_stops_the_run_and_keeps_the_last_good_checkpoint(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    often = ["--set", "train.log_every=32", "--set", "train.checkpoint_every=32", "--set", "train.keep_checkpoints=1"]
    assert run(cli, "train", tiny_config, "--out", out, "--set", "train.total_images=64", *often)[0] == 0
    # The same run, resumed with learning rates that blow it up (the lsgan at lr 1e6).
    blow_up = ["--set", "optim.D.lr=1e6", "--set", "optim.G.lr=1e6", "--set", "train.total_images=1024"]
    code, text = run(cli, "train", "--resume", out, *blow_up)
    assert code == 3, text
    [line] = [x for x in text.splitlines() if x.startswith("error:")]
    assert "training diverged at" in line and "images" in line and "a learning rate far too high (optim.D.lr = 1e+06" in line
    assert "--from nimg-000000064" in line  # the last good checkpoint, named
    names = [p.name for p in ckpt.list_checkpoints(out)]
    assert "nimg-000000064" in names, names  # never pruned by the checkpoints written after the divergence
    for p in ckpt.list_checkpoints(out):
        assert all_finite(p / "state.pt") and all_finite(p / "rng-rank0.pt"), p
    assert not any(torch.isfinite(t).logical_not().any() for t in load_file(str(out / "generator.safetensors")).values())
    records = [json.loads(line, parse_constant=pytest.fail) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("gnorm_D" in r and r["gnorm_D"] is None for r in records)  # non-finite values are written as null, not NaN
    assert json.loads((out / "events.jsonl").read_text().splitlines()[-1])["exit_code"] == 3


def test_a_run_that_diverges_from_the_start_saves_nothing(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    sets = ["--set", "loss.name=lsgan", "--set", "optim.D.lr=1e6", "--set", "optim.G.lr=1e6", "--set", "train.total_images=512"]
    code, text = run(cli, "train", tiny_config, "--out", out, *sets)
    assert code == 3 and "no checkpoint was written before it" in text, text
    records = [json.loads(line, parse_constant=pytest.fail) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["loss_D"] is None and records[0]["nonfinite_loss_D"] > 0
    assert all(all_finite(p / "state.pt") for p in ckpt.list_checkpoints(out))
    assert not (out / "generator.safetensors").exists() or not ckpt.nonfinite_tensors(load_file(str(out / "generator.safetensors")))


def test_a_run_shorter_than_the_budget_that_skips_nearly_every_step_is_not_done(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    # One log interval longer than the run: the budget is never crossed, but the run ends inside the streak.
    sets = ["--set", "optim.D.lr=1e6", "--set", "optim.G.lr=1e6", "--set", "train.total_images=512", "--set", "train.log_every=4096"]
    code, text = run(cli, "train", tiny_config, "--out", out, *sets)
    assert code == 3, text
    [line] = [x for x in text.splitlines() if x.startswith("error:")]
    assert "training diverged at 512 images" in line and "the run ended inside it" in line, line
    assert "a learning rate far too high" in line
    assert all(all_finite(p / "state.pt") for p in ckpt.list_checkpoints(out))


@pytest.mark.parametrize("key", ["optim.G.lr=nan", "optim.D.lr=inf", "optim.G.betas=[0.5, nan]", "loss.r1_gamma=inf"])
def test_nan_and_inf_settings_are_refused(cli: CliRunner, tiny_config: Path, tmp_path: Path, key: str) -> None:
    code, text = run(cli, "train", tiny_config, "--out", tmp_path / "run", "--set", key)
    assert code == 2 and "must be a finite number" in text and key.split("=")[0] in text and "Traceback" not in text, text
    assert not (tmp_path / "run").exists()


def test_sample_and_eval_refuse_non_finite_weights(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", out)[0] == 0
    weights = load_file(str(out / "generator.safetensors"))
    first = next(k for k, v in weights.items() if v.is_floating_point())
    weights[first] = torch.full_like(weights[first], float("nan"))
    save_file(weights, str(out / "generator.safetensors"))
    commands: list[list[str | Path]] = [["sample", out, "--out", tmp_path / "s.png"], ["eval", out, "--n", "16", "--metrics", "fd"]]
    for command in commands:
        code, text = run(cli, *command)
        assert code == 2 and "inf/NaN" in text and "the run diverged" in text, text
    assert not (tmp_path / "s.png").exists()


def test_a_lazy_r1_step_non_finite_every_time_stops_the_run(
    cli: CliRunner, tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """D and G stay finite; only the lazy R1 step is NaN. Before, it was skipped all run, without a word."""
    from fastgan.losses import penalties

    def nan_r1(gamma: float) -> penalties.Penalty:
        return lambda x: x.real_logits.float().sum() * float("nan")

    monkeypatch.setattr(penalties, "r1_penalty", nan_r1)
    lazy = ["--set", "loss.r1_gamma=0.1", "--set", "loss.reg_every=2", "--set", "train.log_every=64", "--set", "train.total_images=1024"]
    out = tmp_path / "run"
    code, text = run(cli, "train", tiny_config, "--out", out, *lazy)
    assert code == 3, text
    [line] = [x for x in text.splitlines() if x.startswith("error:")]
    assert "the loss of the lazy R1/R2 step" in line and "the R1/R2 penalty alone (loss.r1_gamma = 0.1" in line, line
    assert "optim.D.lr" not in line  # D and G themselves were fine
    assert json.loads((out / "events.jsonl").read_text().splitlines()[-1])["exit_code"] == 3


def test_a_non_finite_batchnorm_statistic_is_reset_at_the_checkpoint_with_one_warning(tiny_config: Path, tmp_path: Path) -> None:
    """A NaN running variance (one overflowing forward pass leaves it so) no longer refuses every
    checkpoint until the run ends with exit 3: it is reset before the first one, with one warning."""
    from torch import nn

    from fastgan.run.reporter import Reporter
    from fastgan.run.session import train

    trainer = make(tiny_config)  # dcgan28: BatchNorm in G and D; checkpoints at 64 and 128 images
    name, bn = next((n, m) for n, m in trainer.G.named_modules() if isinstance(m, nn.BatchNorm2d))
    assert bn.running_var is not None
    bn.running_var[0] = float("nan")  # stays NaN: the momentum update mixes the batch's variance into NaN
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    train(trainer, run_dir, Reporter(run_dir, trainer.cfg.train.total_images, enabled=True, tensorboard=False), [])
    assert [p.name for p in ckpt.list_checkpoints(run_dir)] == ["nimg-000000064", "nimg-000000128"]
    assert all(all_finite(p / "state.pt") for p in ckpt.list_checkpoints(run_dir))
    warnings = [json.loads(line)["message"] for line in (run_dir / "warnings.jsonl").read_text().splitlines()]
    assert [w for w in warnings if "BatchNorm" in w] == [
        f"non-finite BatchNorm running statistics reset before the checkpoint (G.{name}); the next batches estimate them again"
    ], warnings
    assert not any("checkpoint not written" in w for w in warnings)
