"""Bad input to any command is one line on stderr, exit code 2, no traceback, and nothing left
behind: an --out that is a folder or lies below a file, a damaged generator.safetensors, bench
options out of range, and paths that are not valid UTF-8."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support import run, train, write_tiny


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    return train(CliRunner(), write_tiny(folder), folder / "run")


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def refused(cli: CliRunner, tmp_path: Path, *args: str | Path) -> str:
    """Run `fastgan ARGS`; it must exit 2 with one line and leave tmp_path as it was."""
    before = listing(tmp_path)
    code, text = run(cli, *args)
    assert code == 2, text
    assert text.count("\n") == 1 and text.startswith("error: ") and "Traceback" not in text, text
    assert listing(tmp_path) == before, "something was left behind"
    return text


@pytest.mark.parametrize("command", ["sample", "report"])
def test_an_out_that_is_a_folder_or_below_a_file(cli: CliRunner, tiny_run: Path, tmp_path: Path, command: str) -> None:
    suffix = ".png" if command == "sample" else ".html"
    (tmp_path / f"folder{suffix}").mkdir()
    (tmp_path / "a-file").write_text("x")
    text = refused(cli, tmp_path, command, tiny_run, "--out", tmp_path / f"folder{suffix}")
    assert "is a folder; give a file name" in text
    text = refused(cli, tmp_path, command, tiny_run, "--out", tmp_path / "a-file" / "deeper" / f"x{suffix}")
    assert "a-file is a file, so nothing can be written under it" in text


def test_bench_out_below_a_file_and_options_out_of_range(cli: CliRunner, tmp_path: Path) -> None:
    config = write_tiny(tmp_path)
    (tmp_path / "a-file").write_text("x")
    text = refused(cli, tmp_path, "bench", config, "--out", tmp_path / "a-file" / "bench")
    assert "a-file is a file, so nothing can be written under it" in text
    text = refused(cli, tmp_path, "bench", config, "--processes", "0", "--out", tmp_path / "b")
    assert "--processes 0: each count must be 1 or more" in text
    text = refused(cli, tmp_path, "bench", config, "--rung-seconds", "nan", "--out", tmp_path / "b")
    assert "--rung-seconds nan: must be a positive number of seconds" in text


@pytest.mark.parametrize("cut", ["truncated", "not-safetensors"])
def test_a_damaged_generator_safetensors(cli: CliRunner, tiny_run: Path, tmp_path: Path, cut: str) -> None:
    damaged = tmp_path / "run"
    shutil.copytree(tiny_run, damaged)
    weights = damaged / "generator.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2] if cut == "truncated" else b"junk" * 10)
    for source in (damaged, weights):
        text = refused(cli, tmp_path, "sample", source, "--out", tmp_path / "s.png")
        assert "generator.safetensors: cannot read it, it is truncated or damaged" in text
        assert "give its run's newest checkpoint instead" in text and "nimg-000000128" in text
    text = refused(cli, tmp_path, "eval", weights, "--n", "10")
    assert "truncated or damaged" in text


def test_paths_that_are_not_utf8_are_refused_before_any_folder_is_made(cli: CliRunner, tiny_run: Path, tmp_path: Path) -> None:
    config = write_tiny(tmp_path)
    bad = tmp_path / "runs" / "caf\udce9"  # what Python makes of the Latin-1 bytes b"caf\xe9" in argv
    cases: list[list[str | Path]] = [
        ["train", config, "--out", bad],
        ["sample", tiny_run, "--out", bad.with_suffix(".png")],
        ["report", tiny_run, "--out", bad.with_suffix(".html")],
        ["bench", config, "--out", bad],
    ]
    for args in cases:
        text = refused(cli, tmp_path, *args)
        assert "caf\\xe9" in text and "is not valid UTF-8" in text
    assert not (tmp_path / "runs").exists()
