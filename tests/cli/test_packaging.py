"""What can be checked of the container and the package without a Docker engine, and the
installed command's surface: `fastgan --help` (instant, no torch, with -h, --version and plain
placeholders), presets by name from any folder, and `fastgan info`."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support import REPO, run


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_dockerfile_installs_this_package_with_dali_and_report_and_runs_fastgan() -> None:
    ins = dockerfile_instructions()
    assert ins[0][0] == "FROM" and "cuda" in ins[0][1]
    installs = [arg for op, arg in ins if op == "RUN" and "pip install" in arg]
    extras = [set(m.group(1).split(",")) for arg in installs if (m := re.search(r"""pip install ["']?\.\[([a-z,]+)\]""", arg))]
    assert any({"dali", "report"} <= e for e in extras), "the image needs DALI and fastgan report's matplotlib"
    assert ("ENTRYPOINT", '["fastgan"]') in ins
    for op, arg in ins:
        if op == "COPY":
            for src in arg.split()[:-1]:
                assert (REPO / src).exists(), f"Dockerfile copies {src}, which is not in the repository"


def test_pyproject_declares_the_cli_and_extras() -> None:
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert meta["scripts"]["fastgan"] == "fastgan.cli:main"
    assert any(d.startswith("nvidia-dali") for d in meta["optional-dependencies"]["dali"])
    names = {re.split(r"[<>=\[]", d)[0] for d in meta["dependencies"]}
    assert {"torch", "torchvision", "accelerate", "rich", "typer"} <= names


def test_help_is_instant_and_imports_no_torch() -> None:
    code = "import sys, fastgan.cli; print('torch' in sys.modules, 'accelerate' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fastgan", "--help"], capture_output=True, check=True)
    assert time.perf_counter() - start < 5  # generous: torch alone takes ~2 s to import here


def test_launch_configs_exist() -> None:
    for name in ("single-gpu.yaml", "multi-gpu.yaml", "multi-node.yaml", "cpu-ddp.yaml", "slurm.sbatch"):
        assert (REPO / "launch" / name).is_file(), name


def test_help_lists_commands(cli: CliRunner) -> None:
    code, out = run(cli, "--help")
    assert code == 0 and "train" in out and "sample" in out and "info" in out


def test_info(cli: CliRunner) -> None:
    code, text = run(cli, "info")
    assert code == 0 and "torch" in text and "bf16" in text


def test_help_has_the_habits_of_other_command_lines(cli: CliRunner) -> None:
    import fastgan

    assert run(cli, "--version") == (0, f"fastgan {fastgan.__version__}\n")
    code, short = run(cli, "-h")
    assert code == 0 and short == run(cli, "--help")[1] and "fastgan train fashion-r3gan" in " ".join(short.split())
    for command in ("train", "sample", "eval", "report", "info", "presets", "bench", "data check", "data prepare"):
        code, text = run(cli, *command.split(), "-h")
        assert code == 0, text
        for typer_style in ("<bool>", "<list[str]>", "<path>", "<int>", "{source}", "{src}", "[config]"):
            assert typer_style not in text, f"{command} -h shows {typer_style}"
    usage = run(cli, "sample", "-h")[1]
    assert "sample [OPTIONS] SOURCE" in usage and "--out  " in usage
    assert "train [OPTIONS] [CONFIG]" in run(cli, "train", "-h")[1]


def test_presets_work_by_name_from_any_folder(cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no configs/ here
    for name in ("fashion-r3gan", "fashion-r3gan.toml", "configs/fashion-r3gan.toml"):
        code, out = run(cli, "train", name, "--dry-run", "--set", "train.batch_size=32")
        assert code == 0 and "batch_size = 32" in out, out
    assert out.split("[model]")[1] == tomllib_text_of("fashion-r3gan")
    code, text = run(cli, "presets")
    lines = text.splitlines()
    shipped = sorted(p.stem for p in (REPO / "configs").glob("*.toml"))
    assert code == 0 and [line.split()[0] for line in lines[: len(shipped)]] == shipped
    assert any(line.startswith("fashion-r3gan ") and "the quickstart" in line for line in lines)


def tomllib_text_of(preset: str) -> str:
    """`train PRESET --dry-run --set train.batch_size=32` from the clone's configs/, after [model]."""
    from fastgan.config import load_config, to_toml

    return to_toml(load_config(REPO / "configs" / f"{preset}.toml", ["train.batch_size=32"])).split("[model]")[1]


def test_the_shipped_presets_are_the_configs(tmp_path: Path) -> None:
    """configs/ is the presets' home; fastgan/presets/ ships them in the package. Edited one? Then:
    cp configs/*.toml fastgan/presets/"""
    configs = {p.name: p.read_bytes() for p in (REPO / "configs").glob("*.toml")}
    shipped = {p.name: p.read_bytes() for p in (REPO / "fastgan" / "presets").glob("*.toml")}
    assert shipped == configs, "fastgan/presets/ differs from configs/: cp configs/*.toml fastgan/presets/"
    data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "presets/*.toml" in data["fastgan"]


def test_messages_point_to_the_quickstart_preset(cli: CliRunner, tmp_path: Path) -> None:
    for args in (["--help"], ["train"], ["train", tmp_path / "missing.toml"], ["train", "fashion-r3gan", "--auto-resume"]):
        code, text = run(cli, *args)
        text = " ".join(text.split())  # the help wraps lines
        assert "fastgan train fashion-r3gan" in text or "e.g. fashion-r3gan" in text, (args, text)
        assert "fashion-dcgan" not in text.replace("fashion-dcgan,", ""), (args, text)  # listed among the presets only


def test_info_names_the_cpu_and_the_optional_parts(cli: CliRunner) -> None:
    from fastgan.hardware import cpu_info

    code, text = run(cli, "info")
    assert code == 0, text
    for row in ("CPU ", "CPU bf16 units", "DALI", "TensorBoard", "matplotlib"):
        assert row in text, row
    assert cpu_info()["model"][:20] in text
