"""`fastgan train` in process on tiny data: the dry run, the run folder it leaves, and its usage
errors. Resuming is in test_stop_and_resume.py, --out and the lock in test_run_folder.py,
sampling in test_sample.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fastgan.config import load_config
from tests.support import REPO, run


def test_dry_run_prints_resolved_config(cli: CliRunner, tmp_path: Path) -> None:
    code, out = run(cli, "train", REPO / "configs" / "fashion-dcgan.toml", "--dry-run", "--set", "train.batch_size=32")
    assert code == 0
    p = tmp_path / "printed.toml"
    p.write_text(out)
    cfg = load_config(p)
    assert cfg.train.batch_size == 32 and cfg.model.name == "dcgan28"


def test_train_leaves_a_complete_run_folder(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, text = run(cli, "train", tiny_config, "--out", out)
    assert code == 0, text
    assert (out / "config.toml").is_file() and (out / "generator.safetensors").is_file()
    assert load_config(out / "config.toml") == load_config(tiny_config)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["nimg"] for r in records] == [64, 128]
    for key in ("loss_D", "loss_G", "D_real", "D_gen", "gnorm_D", "gnorm_G", "images_per_s"):
        assert all(np.isfinite(r[key]) for r in records), key
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["nimg-000000064", "nimg-000000128"]
    assert {p.name for p in (out / "checkpoints" / "nimg-000000128").iterdir()} == {"state.pt", "rng-rank0.pt", "config.toml"}
    assert (out / "samples" / "latest.png").is_file() and (out / "samples" / "nimg-000000128.png").is_file()
    assert any((out / "tensorboard").iterdir())
    state = torch.load(out / "checkpoints" / "nimg-000000128" / "state.pt", weights_only=True)
    assert state["cur_nimg"] == 128 and not any(k.startswith(("module.", "_orig_mod.")) for k in state["G"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "model.name=resnet"], "model.name = 'resnet' is not known"),
        (["--set", "loss.name=nope"], "loss.name = 'nope' is not known"),
        (["--set", "data.backend=nope"], "data.backend = 'nope' is not known"),
        (["--set", "train.nope=1"], "unknown key 'train.nope'"),
        (["--set", "train.batch_size=big"], "must be a whole number"),
        (["--set", "data.source=npy:/no/such.npy"], "file not found"),
        (["--set", "model.resolution=32"], "model.resolution = 32"),
    ],
)
def test_usage_errors_exit_2_without_traceback_or_run_folder(
    cli: CliRunner, tiny_config: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "run"
    code, text = run(cli, "train", tiny_config, "--out", out, *args)
    assert code == 2, text
    assert message in text and "Traceback" not in text
    assert not out.exists()
