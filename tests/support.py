"""What the tests share, in one place: where things are, the tiny datasets, a trainer built from a
config, steps of it, and the CLI called in process. Fixtures and hooks live in tests/conftest.py.

    from tests.support import REPO, make, run, steps
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from typer.testing import CliRunner

from fastgan.cli import app
from fastgan.config import load_config
from fastgan.validate import validate

if TYPE_CHECKING:  # torch is imported where it is used, so conftest.py (and its clock) starts without it
    import torch

    from fastgan.data.folder import FolderSource
    from fastgan.train.build import Trainer

REPO = Path(__file__).resolve().parent.parent
FAULT_CLI = REPO / "tests" / "distributed" / "fault_cli.py"  # the CLI with a fault injected (its docstring says how)

FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not (FASHION / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist; scripts/setup.sh does it)",
)


# ---------------------------------------------------------------------------- tiny data


def write_tiny_npy(folder: Path) -> Path:
    """256 grey 28x28 images of 4 classes (bright squares at class-dependent places), + labels."""
    rng = np.random.default_rng(0)
    labels = np.arange(256) % 4
    images = rng.integers(0, 40, size=(256, 28, 28), dtype=np.uint8)
    for i, c in enumerate(labels):
        r, col = divmod(int(c), 2)
        images[i, 4 + 12 * r : 12 + 12 * r, 4 + 12 * col : 12 + 12 * col] = 220
    path = folder / "tiny.npy"
    np.save(path, images)
    np.save(folder / "tiny.labels.npy", labels.astype(np.int64))
    return path


def write_tiny(folder: Path) -> Path:
    """A debug-sized config on the tiny array (written into `folder`): trains in about a second."""
    npy = write_tiny_npy(folder)
    cfg = folder / "tiny.toml"
    cfg.write_text(
        f"""
[model]
name = "dcgan28"
width = 4

[data]
source = "npy:{npy}"

[train]
batch_size = 16
total_images = 128
log_every = 64
sample_every = 64
checkpoint_every = 64
num_samples = 8
"""
    )
    return cfg


def write_recipe(folder: Path, *, batch: int = 32, reg_every: int = 2, width: int = 32) -> Path:
    """Today's recipe at toy size (cifar10-r3gan's parts): R3GAN's nets, conditional, rpgan with lazy
    R1/R2 every `reg_every` D steps, ADA starting at p = 0.2 with a small speed_images, channels_last,
    on a generated 32 px RGB array of 512 images and 10 classes (written into `folder`)."""
    rng = np.random.default_rng(0)
    np.save(folder / "rgb32.npy", rng.integers(0, 256, size=(512, 3, 32, 32), dtype=np.uint8))
    np.save(folder / "rgb32.labels.npy", (np.arange(512) % 10).astype(np.int64))
    cfg = folder / "recipe.toml"
    cfg.write_text(
        f"""
[model]
name = "r3gan"
resolution = 32
channels = 3
z_dim = 32
conditional = true

[model.r3gan]
stage_widths = [{width}, {width}, {width}, {width}]
stage_blocks = [1, 1, 1, 1]
group_channels = 8

[loss]
name = "rpgan"
r1_gamma = 0.05
r2_gamma = 0.05
reg_every = {reg_every}

[augment]
policy = "color,translation,cutout"
p = 0.2
target = 0.6
speed_images = 2_000

[optim.G]
lr = 2e-4
betas = [0.0, 0.99]

[optim.D]
lr = 2e-4
betas = [0.0, 0.99]

[data]
source = "npy:{folder / "rgb32.npy"}"

[train]
batch_size = {batch}
total_images = 128
channels_last = true
log_every = 64
sample_every = 64
checkpoint_every = 64
num_samples = 10
"""
    )
    return cfg


def folder_source(root: Path, resolution: int = 8, channels: int = 1) -> FolderSource:
    """`data.source = "folder:ROOT"`, opened as training opens it."""
    from fastgan.config import DataConfig
    from fastgan.data.folder import FolderSource
    from fastgan.data.sources import open_source

    src = open_source(DataConfig(source=f"folder:{root}"), channels, resolution)
    assert isinstance(src, FolderSource)
    return src


# ---------------------------------------------------------------------------- a trainer in process


def make(config: Path, *overrides: str) -> Trainer:
    """The trainer `fastgan train CONFIG --set OVERRIDE...` would build, checked as the CLI checks it."""
    from fastgan.data.sources import open_source
    from fastgan.train.build import build_trainer
    from fastgan.train.setup import make_accelerator

    cfg = load_config(config, list(overrides))
    validate(cfg)
    return build_trainer(cfg, make_accelerator(cfg), open_source(cfg.data, cfg.model.channels, cfg.model.resolution))


def steps(trainer: Trainer, n: int) -> None:
    data = iter(trainer.data)
    for _ in range(n):
        trainer.train_step(data)


def params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters only: BatchNorm statistics update in every forward, skipped step or not."""
    return {k: v.detach().clone() for k, v in module.named_parameters()}


# ---------------------------------------------------------------------------- the CLI in process


def run(cli: CliRunner, *args: str | Path) -> tuple[int, str]:
    """`fastgan ARGS` in process: (exit code, output)."""
    result = cli.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def train(cli: CliRunner, config: Path, out: Path, *sets: str) -> Path:
    """`fastgan train CONFIG --out OUT --set SET...` in process; the test fails unless it exits 0."""
    args: list[str | Path] = ["train", config, "--out", out]
    for item in sets:
        args += ["--set", item]
    code, text = run(cli, *args)
    assert code == 0, text
    return out
