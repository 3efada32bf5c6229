"""Shared fixtures: tiny synthetic datasets, the CLI runner, the Fashion-MNIST gate, and a test
time budget for scripts/gpu-check.sh (FASTGAN_TEST_BUDGET_S)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_fashion = pytest.mark.skipif(
    not (FASHION / "t10k-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist; scripts/setup.sh does it)",
)
REPO = Path(__file__).resolve().parent.parent


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


@pytest.fixture
def tiny_npy(tmp_path: Path) -> Path:
    return write_tiny_npy(tmp_path)


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    return write_tiny(tmp_path)


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


_SESSION_START = time.monotonic()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Under a budget (the GPU check gives its pytest stage one), tests that would start after it
    are skipped as "not run (budget)", so the run ends in time and still writes its report."""
    budget = os.environ.get("FASTGAN_TEST_BUDGET_S")
    if budget and time.monotonic() - _SESSION_START > float(budget):
        pytest.skip(f"not run (budget): the stage's {float(budget):.0f} s were spent")


@pytest.fixture
def feature_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Real-image features go to a temporary folder, never the user's cache."""
    cache = tmp_path / "feature-cache"
    monkeypatch.setenv("FASTGAN_CACHE", str(cache))
    return cache
