"""The README and docs/ say what the code does: the README stays short, every link and every
repository path they name exists, and the README's "Using it" block runs in order, as written,
with tiny sizes."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO, needs_fashion

README = REPO / "README.md"
DOCS = sorted((REPO / "docs").glob("*.md"))

# The block's sizes are for users; these make each command take seconds. Each must match the
# block exactly once, so a README edit that drops or changes one fails here instead of drifting.
TINY = {
    "configs/fashion-r3gan.toml --out runs/f1": "configs/fashion-r3gan.toml --out runs/f1 --set train.total_images=512",
    "train.total_images=200_000": "train.total_images=1_024",
    "runs/f2 --auto-resume": "runs/f2 --auto-resume --set train.total_images=512",
    "fastgan eval runs/f1": "fastgan eval runs/f1 --n 256",
    "--out bench/": "--out bench/ --ladder eager --batch 32 --steps 2 --windows 1 --warmup 1",
}


def using_it_block() -> list[str]:
    text = README.read_text()
    section = text.split("## Using it", 1)[1]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("  #", 1)[0].strip() for line in block.splitlines() if line.strip()]


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move depth to docs/"
    commands = [line for line in lines if line.startswith("bash scripts/")]
    assert commands[:2] == ["bash scripts/quickstart.sh", "bash scripts/test.sh"]
    assert (REPO / ".ci" / "run").read_text().strip().endswith("bash scripts/test.sh")


@pytest.mark.parametrize("doc", [README, *DOCS], ids=lambda p: p.name)
def test_links_and_paths_exist(doc: Path) -> None:
    text = doc.read_text()
    missing = []
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):  # markdown links and images
        if not re.match(r"[a-z]+://", target) and not (doc.parent / target).exists():
            missing.append(target)
    # `fastgan/run/tasks.py`, `tests/unit/test_losses.py`, `configs/debug.toml`: named files exist
    for path in re.findall(r"`((?:fastgan|tests|scripts|configs|launch|benchmarks|docs)/[\w./-]+\.(?:py|toml|yaml|sh|sbatch|md))`", text):
        if not (REPO / path).exists():
            missing.append(path)
    assert not missing, f"{doc.name} names files that do not exist: {missing}"
    assert "../shared" not in text and "seed tutorial" not in text


@needs_fashion
def test_the_using_it_block_runs_in_order(tmp_path: Path) -> None:
    lines = using_it_block()
    assert lines[0] == "source .venv/bin/activate"
    script = "\n".join(lines[1:])
    for long, tiny in TINY.items():
        assert script.count(long) == 1, f"the README's 'Using it' block no longer contains {long!r}: update TINY"
        script = script.replace(long, tiny)
    (tmp_path / "configs").symlink_to(REPO / "configs")
    env = {**os.environ, "FASTGAN_CACHE": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    for command in script.splitlines():
        argv = shlex.split(command)
        assert argv[0] == "fastgan", command
        done = subprocess.run([sys.executable, "-m", "fastgan", *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    made = ["runs/f1/generator.safetensors", "runs/f2/generator.safetensors", "runs/f1/eval-n256.json"]
    made += ["grid.png", "samples.npy", "walks.png", "report.html", "bench/bench.json"]
    assert [m for m in made if not (tmp_path / m).is_file()] == []
