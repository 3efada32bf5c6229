"""What can be checked of the container and the package without a Docker engine, and the
installed command's surface: `fastgan --help` (instant, no torch) and `fastgan info`."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import tomllib

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
