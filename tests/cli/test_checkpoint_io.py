"""Checkpoint files: fsynced before the rename, a full disk is one line with nothing half-written
left, a bad per-process file is a usage error, and a checkpoint from another device type or an
older fastgan resumes with one notice instead of a crash."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fastgan.run import checkpoint as ckpt
from tests.support import run


def test_a_full_disk_is_one_line_and_older_checkpoints_stay(
    cli: CliRunner, tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    real_fsync, synced = os.fsync, []

    def fsync(fd: int) -> None:  # the disk fills up once the first checkpoint is written
        synced.append(fd)
        if any((out / "checkpoints" / ".tmp-nimg-000000128").glob("*")):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    code, text = run(cli, "train", tiny_config, "--out", out)
    assert code == 4, text
    [line] = [x for x in text.splitlines() if x.startswith("error:")]
    assert "disk full while writing" in line and ".tmp-nimg-000000128" in line and "Traceback" not in text
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["nimg-000000064"]  # no partial folder left
    assert torch.load(out / "checkpoints" / "nimg-000000064" / "state.pt", weights_only=True)["cur_nimg"] == 64
    assert synced  # checkpoint files are fsynced


def test_files_are_fsynced_before_the_rename_publishes_them(tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def replace(a: str | Path, b: str | Path) -> None:
        calls.append(f"replace {Path(a).name}")
        real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    assert run(CliRunner(), "train", tiny_config, "--out", tmp_path / "run", "--set", "train.total_images=64")[0] == 0
    publish = calls.index("replace .tmp-nimg-000000064")
    synced = [c for c in calls[:publish] if ".tmp-nimg-000000064" in c]
    assert {Path(c).name for c in synced} == {"state.pt", "rng-rank0.pt", "config.toml"}


def test_a_bad_process_state_file_is_a_usage_error(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", out)[0] == 0
    (out / "checkpoints" / "nimg-000000128" / "rng-rank0.pt").write_bytes(b"not a checkpoint")
    code, text = run(cli, "train", "--resume", out, "--set", "train.total_images=192")
    assert code == 2 and "rng-rank0.pt: cannot load" in text and "--from nimg-" in text and "Traceback" not in text, text


def edit(path: Path, **changes: object) -> None:
    state = torch.load(path, weights_only=True)
    state.update(changes)
    torch.save(state, path)


def test_generator_states_of_another_device_type_resume_with_one_notice(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    """What a CUDA checkpoint looks like to a CPU process: 16-byte Philox generator states."""
    out = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", out, "--set", "data.hflip=true")[0] == 0
    folder = out / "checkpoints" / "nimg-000000128"
    philox = torch.zeros(16, dtype=torch.uint8)
    edit(folder / "state.pt", latent_gen=philox, device_type="cuda")
    rank0 = torch.load(folder / "rng-rank0.pt", weights_only=True)
    edit(folder / "rng-rank0.pt", cuda=philox, device_type="cuda", data={**rank0["data"], "flip_rng": philox})
    code, text = run(cli, "train", "--resume", out, "--set", "train.total_images=192")
    assert code == 0, text
    [notice] = [x for x in text.splitlines() if "notice:" in x]
    assert "the flip generator, the latent generator cannot be restored exactly" in notice and "re-seeded" in notice
    state = torch.load(out / "checkpoints" / "nimg-000000192" / "state.pt", weights_only=True)
    assert not ckpt.nonfinite_tensors(state)


def test_a_checkpoint_in_the_old_layout_resumes(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    """Before per-process data states: every GPU's CUDA state as a list, the data state in state.pt only."""
    out = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", out)[0] == 0
    folder = out / "checkpoints" / "nimg-000000128"
    state = torch.load(folder / "state.pt", weights_only=True)
    del state["device_type"], state["precision"]  # the precision trained in: from the checkpoint's config.toml
    state["version"] = 1
    torch.save(state, folder / "state.pt")
    rank0 = torch.load(folder / "rng-rank0.pt", weights_only=True)
    old = {k: rank0[k] for k in ("python", "numpy", "torch")} | {"cuda": [torch.zeros(16, dtype=torch.uint8)] * 8}
    torch.save(old, folder / "rng-rank0.pt")
    code, text = run(cli, "train", "--resume", out, "--set", "train.total_images=192")
    assert code == 0 and "resuming at 128 images" in text and "notice" not in text, text
