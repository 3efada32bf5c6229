"""The real CLI, in process, on tiny data: train, sample, resume, dry-run and every usage error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fastgan.config import load_config
from tests.support import REPO, run


def test_help_lists_commands(cli: CliRunner) -> None:
    code, out = run(cli, "--help")
    assert code == 0 and "train" in out and "sample" in out and "info" in out


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


def test_sample_png_and_npy(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", run_dir)[0] == 0
    code, text = run(cli, "sample", run_dir, "--n", "10", "--out", tmp_path / "s.npy", "--seed", "1")
    assert code == 0, text
    arr = np.load(tmp_path / "s.npy")
    assert arr.dtype == np.uint8 and arr.shape == (10, 1, 28, 28)
    # the same seed gives the same images, from the run folder or its newest checkpoint
    run(cli, "sample", run_dir / "checkpoints" / "nimg-000000128", "--n", "10", "--out", tmp_path / "c.npy", "--seed", "1")
    assert np.array_equal(arr, np.load(tmp_path / "c.npy"))
    code, _ = run(cli, "sample", run_dir, "--n", "12", "--out", tmp_path / "grid.png")
    from PIL import Image

    assert code == 0 and Image.open(tmp_path / "grid.png").size[0] > 28


def test_resume_continues_from_newest_checkpoint(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", run_dir)[0] == 0
    code, text = run(cli, "train", "--resume", run_dir, "--set", "train.total_images=192")
    assert code == 0, text
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["nimg"] for r in records] == [64, 128, 192]
    assert load_config(run_dir / "config.toml").train.total_images == 192


def tiny_run(tmp_path: Path, tiny_config: Path, cli: CliRunner, name: str, *args: str) -> Path:
    out = tmp_path / name
    code, text = run(cli, "train", tiny_config, "--out", out, *args)
    assert code == 0, text
    return out


def test_resume_is_equivalent_to_training_straight(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    """128 images then 64 more, resumed, gives bitwise the same weights as 192 straight."""
    straight = tiny_run(tmp_path, tiny_config, cli, "straight", "--set", "train.total_images=192")
    resumed = tiny_run(tmp_path, tiny_config, cli, "resumed")
    assert run(cli, "train", "--resume", resumed, "--set", "train.total_images=192")[0] == 0
    a = torch.load(straight / "checkpoints" / "nimg-000000192" / "state.pt", weights_only=True)
    b = torch.load(resumed / "checkpoints" / "nimg-000000192" / "state.pt", weights_only=True)
    for net in ("G", "D", "G_ema"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k}"


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


def test_resume_errors(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, text = run(cli, "train", "--resume", empty)
    assert code == 2 and "not a run folder" in text
    (empty / "config.toml").write_text((tiny_config).read_text())
    code, text = run(cli, "train", "--resume", empty)
    assert code == 2 and "no complete checkpoint" in text
    code, text = run(cli, "train")
    assert code == 2 and "missing CONFIG" in text


def test_existing_run_is_not_overwritten(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tiny_run(tmp_path, tiny_config, cli, "run")
    before = (out / "metrics.jsonl").read_text()
    code, text = run(cli, "train", tiny_config, "--out", out)
    assert code == 2 and "--resume" in text
    assert (out / "metrics.jsonl").read_text() == before


def test_sample_errors(cli: CliRunner, tmp_path: Path) -> None:
    code, text = run(cli, "sample", tmp_path, "--out", tmp_path / "x.png")
    assert code == 2 and "not a run folder" in text
    code, text = run(cli, "sample", tmp_path, "--out", tmp_path / "x.jpg")
    assert code == 2 and "must end in .png" in text


def test_info(cli: CliRunner) -> None:
    code, text = run(cli, "info")
    assert code == 0 and "torch" in text and "bf16" in text
