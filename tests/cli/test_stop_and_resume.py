"""One process: a resume continues from the newest checkpoint, bitwise as if never stopped; a
signal saves the run; the same command with --auto-resume starts, continues or
finishes it; --from picks an older checkpoint; overrides on resume mean what they say; the logs
never hold duplicate rows or bare NaN; a DALI checkpoint resumes bitwise too."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fastgan.config import load_config
from fastgan.run import checkpoint as ckpt
from tests.support import FAULT_CLI, REPO, run, train


def rows(run_dir: Path, name: str = "metrics.jsonl") -> list[dict]:
    def strict(x: str) -> None:
        raise ValueError(f"bare {x} in {name}")

    return [json.loads(line, parse_constant=strict) for line in (run_dir / name).read_text().splitlines()]


def test_resume_continues_from_newest_checkpoint(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", run_dir)[0] == 0
    code, text = run(cli, "train", "--resume", run_dir, "--set", "train.total_images=192")
    assert code == 0, text
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["nimg"] for r in records] == [64, 128, 192]
    assert load_config(run_dir / "config.toml").train.total_images == 192


def test_resume_is_equivalent_to_training_straight(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    """128 images then 64 more, resumed, gives bitwise the same weights as 192 straight."""
    straight = train(cli, tiny_config, tmp_path / "straight", "train.total_images=192")
    resumed = train(cli, tiny_config, tmp_path / "resumed")
    assert run(cli, "train", "--resume", resumed, "--set", "train.total_images=192")[0] == 0
    a = torch.load(straight / "checkpoints" / "nimg-000000192" / "state.pt", weights_only=True)
    b = torch.load(resumed / "checkpoints" / "nimg-000000192" / "state.pt", weights_only=True)
    for net in ("G", "D", "G_ema"):
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k}"


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


@pytest.mark.parametrize(("sig", "code"), [("term", 143), ("int", 130)])
def test_a_signal_saves_a_checkpoint_and_exits_with_its_code(tiny_config: Path, tmp_path: Path, sig: str, code: int) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, str(FAULT_CLI), "train", str(tiny_config), "--out", str(out)]
    cmd += ["--set", "train.total_images=100000"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "FASTGAN_FAULT": f"{sig}@48:0", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == code, result.stderr[-2000:]
    name = signal.Signals(code - 128).name
    assert result.stderr.count(f"stopped by {name} at 48 images") == 1 and "Traceback" not in result.stderr
    # one checkpoint at the step boundary the signal arrived in (the first interval is 64)
    assert [p.name for p in ckpt.list_checkpoints(out)] == ["nimg-000000048"]
    assert not (out / ".fastgan-lock").exists()
    assert rows(out, "events.jsonl")[-1]["exit_code"] == code


def test_signal_handlers_are_restored_after_a_run(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert run(cli, "train", tiny_config, "--out", tmp_path / "run")[0] == 0
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_auto_resume_starts_continues_and_then_does_nothing(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, text = run(cli, "train", tiny_config, "--out", out, "--auto-resume", "--set", "train.total_images=64")
    assert code == 0 and "new run" in text, text
    code, text = run(cli, "train", tiny_config, "--out", out, "--auto-resume")  # CONFIG says 128 images
    assert code == 0 and "resuming at 64 images" in text and "train.total_images 64 -> 128" in text, text
    code, text = run(cli, "train", tiny_config, "--out", out, "--auto-resume")
    assert code == 0 and "nothing to do" in text, text
    assert [r["nimg"] for r in rows(out)] == [64, 128]
    assert [e["event"] for e in rows(out, "events.jsonl")] == ["start", "done", "resume", "done"]


def test_auto_resume_keeps_the_runs_own_config_when_the_command_is_the_same(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", out, "--auto-resume")[0] == 0
    assert run(cli, "train", "--resume", out, "--set", "train.total_images=192")[0] == 0
    # A scheduler relaunches the original command: the run's config.toml (192 images) wins.
    code, text = run(cli, "train", tiny_config, "--out", out, "--auto-resume")
    assert code == 0 and "nothing to do" in text and "192" in text, text


def test_auto_resume_restarts_a_run_killed_before_its_first_checkpoint(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", out, "--set", "train.total_images=64")[0] == 0
    for p in ckpt.list_checkpoints(out):  # what a kill before the first checkpoint leaves: a marked folder, logs
        for f in p.iterdir():
            f.unlink()
        p.rmdir()
    code, text = run(cli, "train", tiny_config, "--out", out)
    assert code == 2 and "stopped before its first checkpoint" in text and "--auto-resume" in text
    code, text = run(cli, "train", tiny_config, "--out", out, "--auto-resume")
    assert code == 0 and "new run" in text, text
    assert [r["nimg"] for r in rows(out)] == [64, 128]  # the dead run's rows are gone


def test_changes_on_resume_follow_the_allow_list(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", out)[0] == 0
    before = (out / "config.toml").read_text()
    for key in ("model.dcgan.width=8", "tricks.d_steps=2", "train.batch_size=32", "train.precision=bf16", "train.num_samples=4"):
        code, text = run(cli, "train", "--resume", out, "--set", key, "--set", "train.total_images=192")
        assert code == 2 and key.split("=")[0] in text and "cannot change when resuming" in text, (key, text)
    code, text = run(cli, "train", tiny_config, "--out", out, "--auto-resume", "--set", "loss.name=hinge")
    assert code == 2 and "loss.name" in text
    assert (out / "config.toml").read_text() == before  # refused before anything was written


def test_a_resume_computes_in_the_precision_the_checkpoint_was_trained_in(
    cli: CliRunner, tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """train.precision = "auto" trained in fp32 on a CPU without bf16 units; resumed where "auto"
    means bf16 it is refused, and renaming "auto" to the recorded "no" continues it as trained."""
    from fastgan import hardware

    out = tmp_path / "run"
    monkeypatch.setattr(hardware, "cpu_info", lambda: {"flags": "fpu avx2 fma"})
    assert run(cli, "train", tiny_config, "--out", out, "--set", "train.precision=auto")[0] == 0
    assert torch.load(out / "checkpoints" / "nimg-000000128" / "state.pt", weights_only=True)["precision"] == "no"
    assert rows(out, "events.jsonl")[0]["precision"] == "no"

    monkeypatch.setattr(hardware, "cpu_info", lambda: {"flags": "fpu avx2 avx512_bf16 amx_bf16"})  # another machine
    code, text = run(cli, "train", "--resume", out, "--set", "train.total_images=192")
    assert code == 2 and "train.precision = 'auto' is 'bf16' on this machine" in text and "--set train.precision=no" in text, text
    assert [r["nimg"] for r in rows(out)] == [64, 128]  # refused before anything was written
    code, text = run(cli, "train", "--resume", out, "--set", "train.precision=no", "--set", "train.total_images=192")
    assert code == 0, text
    assert torch.load(out / "checkpoints" / "nimg-000000192" / "state.pt", weights_only=True)["precision"] == "no"
    code, text = run(cli, "train", "--resume", out, "--set", "train.precision=fp16", "--set", "train.total_images=256")
    assert code == 2 and "cannot change when resuming" in text  # between two concrete precisions: never


def test_a_checkpoint_trained_with_auto_before_the_record_stays_auto(tmp_path: Path) -> None:
    from fastgan.errors import UsageError
    from fastgan.run.resume_rules import check_precision

    check_precision(None, "auto", "bf16", tmp_path)  # what "auto" meant there is unknown: it continues as "auto"
    with pytest.raises(UsageError, match="keep train.precision = 'auto'"):
        check_precision(None, "no", "no", tmp_path)


def test_optimizer_overrides_apply_after_the_state_is_loaded(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", out)[0] == 0
    sets = ["--set", "optim.G.lr=0.001", "--set", "optim.D.betas=[0.0, 0.99]", "--set", "train.total_images=192"]
    code, text = run(cli, "train", "--resume", out, *sets)
    assert code == 0 and "changed on resume: optim.D.betas" in text, text
    state = torch.load(out / "checkpoints" / "nimg-000000192" / "state.pt", weights_only=True)
    assert state["opt_G"]["param_groups"][0]["lr"] == 0.001
    assert list(state["opt_D"]["param_groups"][0]["betas"]) == [0.0, 0.99]
    assert state["opt_D"]["param_groups"][0]["lr"] == 2e-4
    assert rows(out, "events.jsonl")[-2]["changed"]["optim.G.lr"] == [0.0002, 0.001]


def test_from_picks_an_older_checkpoint_and_the_logs_have_no_duplicates(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", out, "--set", "train.total_images=192", "--set", "train.keep_checkpoints=5")[0] == 0
    code, text = run(cli, "train", "--resume", out, "--from", "nimg-000000777")
    assert code == 2 and "there are: nimg-000000064, nimg-000000128, nimg-000000192" in text
    code, text = run(cli, "train", "--resume", out, "--from", "nimg-000000064")
    assert code == 0 and "resuming at 64 images" in text, text
    assert "moved the checkpoints past 64 images" in text and (out / "checkpoints" / "superseded" / "nimg-000000192").is_dir()
    assert [r["nimg"] for r in rows(out)] == [64, 128, 192]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss_D")] == [64, 128, 192]  # the first run's 128 and 192 are purged


def test_rolling_back_twice_to_one_checkpoint_keeps_every_superseded_grid(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", out)[0] == 0
    grids = []
    for _ in range(2):  # two branches from nimg-64, each writing its own grid at 128 images
        grids.append((out / "samples" / "nimg-000000128.png").read_bytes())
        lr = f"optim.G.lr={len(grids) * 1e-3}"  # another branch: other weights, another grid
        code, text = run(cli, "train", "--resume", out, "--from", "nimg-000000064", "--set", lr)
        assert code == 0 and "moved 1 sample grid(s) to samples/superseded/" in text, text
    kept = sorted((out / "samples" / "superseded").glob("nimg-000000128*.png"))
    assert len(kept) == 2 and sorted(p.read_bytes() for p in kept) == sorted(grids) and grids[0] != grids[1]
    assert len(list((out / "checkpoints" / "superseded").glob("nimg-000000128*"))) == 2


def test_out_and_resume_must_agree(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", out)[0] == 0
    code, text = run(cli, "train", "--resume", out, "--out", tmp_path / "elsewhere", "--set", "train.total_images=192")
    assert code == 2 and "name different folders" in text and not (tmp_path / "elsewhere").exists()
    code, text = run(cli, "train", "--resume", out, "--out", out, "--set", "train.total_images=192")
    assert code == 0, text
    code, text = run(cli, "train", tiny_config, "--auto-resume")
    assert code == 2 and "--auto-resume needs CONFIG and --out" in text
    code, text = run(cli, "train", tiny_config, "--out", out, "--from", "nimg-000000064")
    assert code == 2 and "--from" in text and "--resume" in text


def test_training_on_a_folder_resumes_bitwise(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    """The real CLI: 128 images then 64 more, resumed through a DALI checkpoint, equals 192 straight."""
    pytest.importorskip("nvidia.dali", reason="NVIDIA DALI not installed (pip install nvidia-dali-cuda130)")
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    rng = np.random.default_rng(0)
    for i in range(48):
        Image.fromarray(rng.integers(0, 255, (32, 30), dtype=np.uint8)).save(tmp_path / "imgs" / f"{i:02d}.png")
    data = ["--set", f"data.source=folder:{tmp_path / 'imgs'}", "--set", "data.backend=dali", "--set", "data.hflip=true"]

    def train_on_folder(*args: str | Path) -> None:
        code, text = run(cli, "train", *args, *data)
        assert code == 0, text

    train_on_folder(tiny_config, "--out", tmp_path / "straight", "--set", "train.total_images=192")
    train_on_folder(tiny_config, "--out", tmp_path / "resumed")
    train_on_folder("--resume", tmp_path / "resumed", "--set", "train.total_images=192")
    a, b = (torch.load(tmp_path / name / "checkpoints/nimg-000000192/state.pt", weights_only=True) for name in ("straight", "resumed"))
    assert a["data"] == b["data"] and all(torch.equal(a["G"][k], b["G"][k]) for k in a["G"])
