"""Messages that tell the truth: a checkpoint without its state is named as such, a full disk
names the log or grid it was writing, a source of another size or mode says how it is converted,
and a resume says when it skips an incomplete checkpoint or cannot restore the RNGs."""

from __future__ import annotations

import builtins
import errno
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.support import run, train


def test_checkpoints_missing_their_state_are_named_and_skipped_with_a_notice(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = train(cli, tiny_config, tmp_path / "run")
    newest = out / "checkpoints" / "nimg-000000128"
    (newest / "state.pt").unlink()
    commands: list[list[str | Path]] = [["sample", newest, "--out", tmp_path / "s.png"], ["eval", newest, "--n", "10"]]
    for command in commands:
        code, text = run(cli, *command)
        assert code == 2 and "this checkpoint has no state.pt" in text and "nimg-000000064" in text, text
        assert "--resume" not in text and "--out" not in text and "Traceback" not in text, text

    code, text = run(cli, "train", "--resume", out)  # the newest complete one is nimg-64: said, not silent
    assert code == 0, text
    assert "notice: nimg-000000128 in" in text and "is incomplete" in text and "resuming from nimg-000000064" in text, text

    (out / "checkpoints" / "nimg-000000128" / "rng-rank0.pt").unlink()  # now complete again, but without its RNG state
    code, text = run(cli, "train", "--resume", out, "--set", "train.total_images=192")
    assert code == 0 and "warning:" in text and "has no rng-rank0.pt" in text, text


def test_a_lone_checkpoint_or_a_run_of_incomplete_ones_is_not_told_to_wait(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    import shutil

    out = train(cli, tiny_config, tmp_path / "run")
    lone = tmp_path / "lone"
    shutil.copytree(out / "checkpoints" / "nimg-000000128", lone)  # copied out of its run
    (lone / "state.pt").unlink()
    code, text = run(cli, "sample", lone, "--out", tmp_path / "l.png")
    assert code == 2 and "a checkpoint folder without its state.pt" in text and "wait" not in text, text
    (out / "generator.safetensors").unlink()
    for name in ("nimg-000000064", "nimg-000000128"):
        (out / "checkpoints" / name / "state.pt").unlink()  # no checkpoint of the run is complete now
    code, text = run(cli, "sample", out, "--out", tmp_path / "r.png")
    assert code == 2 and "lacks its state.pt" in text and "wait" not in text, text


class FullFile:
    """A file on a full disk: it opens, but every write fails with ENOSPC."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def __enter__(self) -> FullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.real.close()


@pytest.mark.parametrize(("full", "named"), [("metrics.jsonl", "metrics.jsonl"), ("nimg-000000064.png", "samples/nimg-000000064.png")])
def test_a_full_disk_while_writing_logs_or_grids_names_the_file(
    cli: CliRunner, tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, full: str, named: str
) -> None:
    real_open = builtins.open

    def open_on_a_full_disk(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        f = real_open(file, mode, *args, **kwargs)
        return FullFile(f) if full in str(file) and any(m in mode for m in "wa") else f

    monkeypatch.setattr(builtins, "open", open_on_a_full_disk)
    out = tmp_path / "run"
    code, text = run(cli, "train", tiny_config, "--out", out)
    assert code == 4, text
    [line] = [x for x in text.splitlines() if x.startswith("error:")]
    assert f"disk full while writing {out / named}" in line and "--auto-resume" in line, line


def test_a_source_of_another_size_or_mode_says_how_it_is_converted(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    from PIL import Image

    rgb = np.random.default_rng(0).integers(0, 255, size=(32, 32, 32, 3), dtype=np.uint8)  # NHWC RGB, 32 px
    np.save(tmp_path / "rgb32.npy", rgb)
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(rgb):
        Image.fromarray(image[:, :30]).save(folder / f"{i}.png")  # 30 x 32: cropped too
    small = ["--set", "train.total_images=16", "--set", "train.batch_size=16"]
    code, text = run(cli, "train", tiny_config, "--out", tmp_path / "a", "--set", f"data.source=npy:{tmp_path / 'rgb32.npy'}", *small)
    assert code == 0, text
    assert "3x32x32 images converted to the model's 1x28x28: RGB to grey (luma), resized to 28x28 (antialiased bilinear)" in text, text
    code, text = run(cli, "train", tiny_config, "--out", tmp_path / "b", "--set", f"data.source=folder:{folder}", *small)
    assert code == 0, text
    assert "32 images converted as they are read to the model's 1x28x28: 32 to grey, 32 centre-cropped to a square" in text, text


def test_a_full_disk_under_tensorboards_writer_is_one_line_naming_its_event_file(
    cli: CliRunner, tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from tensorboard.summary.writer import record_writer

    def full(self: Any, data: bytes) -> None:  # in TensorBoard's writer thread, as a real full disk is
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(record_writer.RecordWriter, "write", full)
    out = tmp_path / "run"
    code, text = run(cli, "train", tiny_config, "--out", out)
    assert code == 4, text
    [line] = [x for x in text.splitlines() if x.startswith("error:")]
    assert f"disk full while writing {out / 'tensorboard'}/events.out.tfevents." in line, line
    assert "Traceback" not in text + capfd.readouterr().err  # the writer thread's traceback is not printed
