"""Feedback on long work where stderr is not a terminal (as under CliRunner, and under nohup,
SLURM or CI): training's log lines say the percent done, the elapsed time and an ETA, a progress
line comes between log lines that are far apart, and eval and sample report as they go."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fastgan import progress
from tests.support import run, train

ETA = re.compile(r"\d+% \d+:\d\d elapsed, ETA (\d+:\d\d|\?)")


@pytest.fixture
def lines_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Progress lines as often as they can come, instead of 10 s in, then each minute."""
    monkeypatch.setattr(progress, "FIRST_LINE_S", 0.0)
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)


def test_training_lines_say_percent_elapsed_and_eta(cli: CliRunner, tiny_config: Path, tmp_path: Path, lines_at_once: None) -> None:
    code, text = run(cli, "train", tiny_config, "--out", tmp_path / "run", "--set", "train.log_every=128")
    assert code == 0, text
    logged = [line for line in text.splitlines() if "loss_D" in line]
    assert logged and all(ETA.search(line) for line in logged), logged
    assert "100% " in logged[-1]
    between = [line for line in text.splitlines() if line.strip().startswith("16 img") and ETA.search(line)]
    assert between, text  # the first step's line, long before the first log line at 128 images


def test_eval_and_sample_report_as_they_go(
    cli: CliRunner, tiny_config: Path, tmp_path: Path, lines_at_once: None, feature_cache: Path
) -> None:
    out = train(cli, tiny_config, tmp_path / "run")
    code, text = run(cli, "sample", out, "--n", "600", "--out", tmp_path / "s.npy")
    assert code == 0 and re.search(r"sample: 256/600 img \(" + ETA.pattern, text), text
    code, text = run(cli, "eval", out, "--n", "20")
    assert code == 0 and re.search(r"eval: 20/60 img embedded \(" + ETA.pattern, text), text
