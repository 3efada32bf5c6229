"""Fixtures and hooks: tiny synthetic datasets, the CLI runner, a private feature cache, and a test
time budget for scripts/gpu-check.sh (FASTGAN_TEST_BUDGET_S). Helpers that tests import are in
tests/support.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support import write_tiny, write_tiny_npy


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
