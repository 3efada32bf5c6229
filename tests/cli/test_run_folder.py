"""`--out` never writes into a folder fastgan did not create nor over an existing run, bad paths
are one line, and one trainer at a time uses a run folder."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fastgan.run import folder as rf
from fastgan.run.lock import LOCK, STALE_S
from tests.support import run, train


def test_a_folder_that_is_not_a_run_is_left_alone(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    data = tmp_path / "my-data"
    data.mkdir()
    (data / "config.toml").write_text("precious = true\n")
    (data / "metrics.jsonl").write_text('{"mine": 1}\n')
    for extra in ([], ["--auto-resume"]):
        code, text = run(cli, "train", tiny_config, "--out", data, *extra)
        assert code == 2 and "is not a fastgan run" in text and "Traceback" not in text, text
    assert sorted(p.name for p in data.iterdir()) == ["config.toml", "metrics.jsonl"]
    assert (data / "config.toml").read_text() == "precious = true\n" and (data / "metrics.jsonl").read_text() == '{"mine": 1}\n'
    empty = tmp_path / "empty"  # an empty folder (made by a scheduler, say) is fine
    empty.mkdir()
    assert run(cli, "train", tiny_config, "--out", empty)[0] == 0
    assert json.loads((empty / rf.MARKER).read_text())["config_sha256"]


@pytest.mark.parametrize("where", ["file", "under-file", "unwritable"])
def test_bad_out_paths_are_one_line(cli: CliRunner, tiny_config: Path, tmp_path: Path, where: str) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    if where == "unwritable" and not os.path.isdir("/sys"):
        pytest.skip("needs /sys, a place nobody (not even root) can make folders in")
    out = {"file": a_file, "under-file": a_file / "run", "unwritable": Path("/sys/fastgan-test-run")}[where]
    code, text = run(cli, "train", tiny_config, "--out", out)
    assert code == 2, text
    assert text.count("\n") == 1 and text.startswith("error: --out") and "Traceback" not in text, text
    assert a_file.read_text() == "x"


def held_lock(run_dir: Path, pid: int, host: str | None = None, age_s: float = 0.0, job: str = "") -> None:
    lock = run_dir / LOCK
    lock.write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(), "slurm_job": job}))
    if age_s:
        os.utime(lock, (time.time() - age_s, time.time() - age_s))


def test_one_trainer_per_run_folder(cli: CliRunner, tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", out)[0] == 0
    assert not (out / LOCK).exists()  # released at the end
    longer = ["--set", "train.total_images=192"]

    other = subprocess.Popen(["sleep", "60"])  # a live process on this host holds it
    try:
        held_lock(out, other.pid)
        code, text = run(cli, "train", "--resume", out, *longer)
        assert code == 2 and f"another trainer (pid {other.pid}" in text, text
        held_lock(out, 12345, host="another-host")  # fresh, on another machine: may still be training
        code, text = run(cli, "train", "--resume", out, *longer)
        assert code == 2 and "another trainer" in text
    finally:
        other.kill()
        other.wait()
    held_lock(out, other.pid)  # its process is gone: stale
    code, text = run(cli, "train", "--resume", out, *longer)
    assert code == 0 and "took over the lock" in text and "its process is gone" in text, text

    held_lock(out, 12345, host="another-host", age_s=STALE_S + 60)  # not refreshed: stale
    code, text = run(cli, "train", "--resume", out, "--set", "train.total_images=256")
    assert code == 0 and "not refreshed" in text, text

    monkeypatch.setenv("SLURM_JOB_ID", "77")  # a requeued SLURM job takes over its own earlier lock
    held_lock(out, 12345, host="another-host", job="77")
    code, text = run(cli, "train", "--resume", out, "--set", "train.total_images=320")
    assert code == 0 and "SLURM job 77" in text, text


def test_auto_resume_meets_the_lock_first_whatever_the_config(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    """A finished run that another trainer holds: never "nothing to do" (exit 0), but the lock's
    line and exit code, as a plain --resume gets them, with the same config or another one."""
    out = train(cli, tiny_config, tmp_path / "run")
    other = subprocess.Popen(["sleep", "60"])
    try:
        held_lock(out, other.pid)
        for extra in ([], ["--set", "train.log_every=32"], ["--set", "optim.D.lr=1e-3"]):
            code, text = run(cli, "train", tiny_config, "--out", out, "--auto-resume", *extra)
            assert code == 2 and f"another trainer (pid {other.pid}" in text and "nothing to do" not in text, (extra, text)
            assert (code, text) == run(cli, "train", "--resume", out)
    finally:
        other.kill()
        other.wait()


def test_live_owner_names_a_trainer_using_the_folder(tmp_path: Path) -> None:
    """scripts/quickstart.sh asks this before it renames runs/quickstart."""
    import subprocess
    import sys

    from fastgan.run.lock import acquire_lock, live_owner

    assert live_owner(tmp_path) is None
    lock, _ = acquire_lock(tmp_path)
    try:
        check = subprocess.run([sys.executable, "-m", "fastgan.run.lock", str(tmp_path)], capture_output=True, text=True)
        assert check.returncode == 1 and "is training there" in check.stderr
    finally:
        lock.release()
    assert live_owner(tmp_path) is None


def test_existing_run_is_not_overwritten(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = train(cli, tiny_config, tmp_path / "run")
    before = (out / "metrics.jsonl").read_text()
    code, text = run(cli, "train", tiny_config, "--out", out)
    assert code == 2 and "--resume" in text
    assert (out / "metrics.jsonl").read_text() == before
