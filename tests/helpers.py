"""Helpers shared by the in-process tests: build a trainer from a config, take steps, call the CLI."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from fastgan.cli import app
from fastgan.config import load_config
from fastgan.data.sources import open_source
from fastgan.train.build import Trainer, build_trainer
from fastgan.train.setup import make_accelerator


def make(config: Path, *overrides: str) -> Trainer:
    cfg = load_config(config, list(overrides))
    return build_trainer(cfg, make_accelerator(cfg), open_source(cfg.data, cfg.model.channels, cfg.model.resolution))


def steps(trainer: Trainer, n: int) -> None:
    data = iter(trainer.data)
    for _ in range(n):
        trainer.train_step(data)


def run(cli: CliRunner, *args: str | Path) -> tuple[int, str]:
    """`fastgan ARGS` in process: (exit code, output)."""
    result = cli.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output
