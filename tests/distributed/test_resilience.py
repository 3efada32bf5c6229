"""No run lost, with 2 gloo processes: signals to one rank or to the launcher, kills and
relaunches (accelerate launch, torchrun --max-restarts, two launchers as two machines, the SLURM
script), and a stalled peer. Faults are injected at a fixed step by tests/distributed/fault_cli.py.

The runs use the MLP without dropout (BatchNorm differs across process counts by design) and
hflip, so a relaunch only matches the uninterrupted run if every process restores its own flips.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from fastgan.cli import app
from fastgan.run import checkpoint as ckpt
from fastgan.train.setup import COLLECTIVE_MARGIN_S
from tests.support import FAULT_CLI, REPO, write_tiny

pytestmark = pytest.mark.ddp
ACCELERATE = [sys.executable, "-m", "accelerate.commands.launch"]
TOTAL = 320  # images: 20 steps of the global batch of 16
MLP = (
    "model.name=mlp",
    "model.mlp.g_hidden=[32, 64]",
    "model.mlp.d_hidden=[64, 32]",
    "model.mlp.d_dropout=0.0",
    "train.checkpoint_every=80",
    "train.log_every=80",
    "train.sample_every=160",
    f"train.total_images={TOTAL}",
)


def sets(*overrides: str) -> list[str]:
    return [x for o in overrides for x in ("--set", o)]


def env(fault: str = "", **extra: str) -> dict[str, str]:
    out = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO), **extra}
    out.pop("FASTGAN_FAULT", None)
    if fault:
        out["FASTGAN_FAULT"] = fault
    return out


def two_processes(port: int, *args: str, fault: str = "", record: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [*ACCELERATE, "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    cmd += ["--dynamo_backend", "no", "--main_process_port", str(port), str(FAULT_CLI), "train", *args]
    extra = {"FASTGAN_FAULT_DIR": str(record)} if record is not None else {}
    return subprocess.run(cmd, env=env(fault, **extra), capture_output=True, text=True, timeout=240, cwd=REPO)


def assert_all_stopped(record: Path, code: int) -> None:
    """Both processes exited with `code`, within torchrun's 30 s grace of the signal."""
    fault = json.loads((record / "fault.json").read_text())
    for rank in (0, 1):
        ended = json.loads((record / f"exit-rank{rank}.json").read_text())
        assert ended["code"] == code, (rank, ended)
        assert ended["time"] - fault["time"] < 30, (rank, ended["time"] - fault["time"])


def final_state(run: Path) -> dict:
    return torch.load(run / "checkpoints" / ckpt.checkpoint_name(TOTAL) / "state.pt", weights_only=True)


def assert_same_weights(a: dict, b: dict, exact: bool = True) -> None:
    for net in ("G", "D", "G_ema"):
        for k in a[net]:
            if exact:
                assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs"
            else:
                torch.testing.assert_close(a[net][k], b[net][k], rtol=1e-4, atol=1e-5, msg=f"{net}.{k}")


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The uninterrupted 2-process run every interrupted one must end equal to."""
    folder = tmp_path_factory.mktemp("straight")
    config = write_tiny(folder)
    run = folder / "run"
    result = two_processes(29531, str(config), "--out", str(run), *sets(*MLP, "data.hflip=true"))
    assert result.returncode == 0, result.stderr[-3000:]
    return config, final_state(run)


def test_sigterm_to_one_rank_stops_both_and_relaunches_match(straight: tuple[Path, dict], tmp_path: Path) -> None:
    config, reference = straight
    run = tmp_path / "run"
    args = [str(config), "--out", str(run), "--auto-resume", *sets(*MLP, "data.hflip=true")]
    # SIGTERM to rank 1 only, at 96 images: both processes stop at one step boundary and save once.
    stopped = two_processes(29533, *args, fault="term@96:1", record=tmp_path)
    assert stopped.returncode != 0
    assert stopped.stderr.count("stopped by SIGTERM") == 1, stopped.stderr[-3000:]
    assert_all_stopped(tmp_path, 143)
    names = [p.name for p in ckpt.list_checkpoints(run)]
    assert names[-1] not in (ckpt.checkpoint_name(80), ckpt.checkpoint_name(160)), names  # a stop checkpoint, between intervals
    stop_at = ckpt.checkpoint_nimg(run / "checkpoints" / names[-1])
    assert 96 <= stop_at < TOTAL
    assert {p.name for p in (run / "checkpoints" / names[-1]).iterdir()} == {"state.pt", "rng-rank0.pt", "rng-rank1.pt", "config.toml"}
    flips = [torch.load(run / "checkpoints" / names[-1] / f"rng-rank{r}.pt", weights_only=True)["data"]["flip_rng"] for r in (0, 1)]
    assert not torch.equal(*flips), "each process saves its own flip generator"

    # Relaunched, then rank 1 is killed (SIGKILL) at 256 images, after the checkpoint at 240.
    killed = two_processes(29535, *args, fault="kill@256:1")
    assert killed.returncode != 0 and ckpt.list_checkpoints(run)[-1].name == ckpt.checkpoint_name(240)
    # The same command once more: it continues from 240 and ends where the straight run did.
    done = two_processes(29537, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming at 240 images" in done.stderr
    assert_same_weights(final_state(run), reference)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["nimg"] for r in rows if "loss_D" in r] == [80, 160, 240, 320]  # no duplicates after the resumes


def test_torchrun_restart_after_a_killed_rank_matches(straight: tuple[Path, dict], tmp_path: Path) -> None:
    config, reference = straight
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "--max-restarts", "1"]
    cmd += [str(FAULT_CLI), "train", str(config), "--out", str(run), "--auto-resume", *sets(*MLP, "data.hflip=true")]
    # Without it, a restarted worker can read the previous attempt's gloo addresses from the
    # store torchrun shares with it, and fail to connect (pytorch/pytorch#135712).
    restart_env = env("kill@176:1", TORCH_DISABLE_SHARE_RDZV_TCP_STORE="1")
    result = subprocess.run(cmd, env=restart_env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming at 160 images" in result.stderr  # the second attempt continued from the newest checkpoint
    assert_same_weights(final_state(run), reference)


def test_sigint_to_the_launcher_stops_every_process_within_the_grace(tiny_config: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    record = tmp_path / "record"
    record.mkdir()
    args = [str(tiny_config), "--out", str(run), *sets(*MLP, "train.total_images=100000")]
    result = two_processes(29539, *args, fault="int-launcher@96:0", record=record)
    assert result.stderr.count("stopped by SIGINT") == 1, result.stderr[-3000:]
    assert_all_stopped(record, 130)
    newest = ckpt.list_checkpoints(run)[-1]
    assert {p.name for p in newest.iterdir()} >= {"state.pt", "rng-rank0.pt", "rng-rank1.pt"}
    assert json.loads((run / "events.jsonl").read_text().splitlines()[-1])["exit_code"] == 130


def test_a_stalled_peer_ends_the_job_with_one_line(tiny_config: Path, tmp_path: Path) -> None:
    run, fault, log = tmp_path / "run", tmp_path / "fault.json", tmp_path / "stderr.txt"
    cmd = [*ACCELERATE, "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    cmd += ["--dynamo_backend", "no", "--main_process_port", "29541", str(FAULT_CLI), "train", str(tiny_config), "--out", str(run)]
    cmd += sets(*MLP, "train.timeout_s=10", "train.eval_every=0")
    with open(log, "w") as err:
        launcher = subprocess.Popen(cmd, env=env("stop@96:1", FASTGAN_FAULT_DIR=str(tmp_path)), stderr=err, cwd=REPO)
        try:
            deadline = time.monotonic() + 180
            while "timed out after" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.5)
            said = time.time()
            text = log.read_text()
            assert "rank 0: the training step (its gradient all-reduce) timed out after 10 s" in text, text[-3000:]
            assert text.count("timed out after") == 1 and "Traceback" not in text.split("timed out after")[0][-2000:]
            # fastgan's deadline said it, not gloo's timeout (COLLECTIVE_MARGIN_S later): NCCL's would abort the process
            assert said - json.loads(fault.read_text())["time"] < 10 + COLLECTIVE_MARGIN_S, said
        finally:
            if fault.is_file():
                os.kill(json.loads(fault.read_text())["pid"], signal.SIGKILL)  # the stalled process
            launcher.wait(timeout=120)
    assert launcher.returncode != 0


def test_a_stop_signal_that_finds_every_process_blocked_ends_each_with_one_line(tiny_config: Path, tmp_path: Path) -> None:
    """Rank 1's host blocks for good (as one in a CUDA sync on an NCCL collective that never ends:
    its signal handlers run, but the loop never gets back), rank 0 waits for it in a collective,
    and Ctrl-C reaches the launcher long before train.timeout_s. Neither can stop at a step
    boundary and save, so each says so in fastgan's one line and exits 5, before torchrun's
    SIGKILL 30 s after the signal would end them without a word."""
    run, fault, log = tmp_path / "run", tmp_path / "fault.json", tmp_path / "stderr.txt"
    cmd = [*ACCELERATE, "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no"]
    cmd += ["--dynamo_backend", "no", "--main_process_port", "29549", str(FAULT_CLI), "train", str(tiny_config), "--out", str(run)]
    cmd += sets(*MLP, "train.timeout_s=600", "train.eval_every=0")
    with open(log, "w") as err:
        launcher = subprocess.Popen(cmd, env=env("hang@96:1", FASTGAN_FAULT_DIR=str(tmp_path)), stderr=err, cwd=REPO)
        try:
            deadline = time.monotonic() + 180
            while not fault.is_file() and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(2.0)  # rank 0 reaches a collective that waits for rank 1
            sent = time.time()
            launcher.send_signal(signal.SIGINT)
            launcher.wait(timeout=120)
        finally:
            if launcher.poll() is None:
                launcher.kill()
    text = log.read_text()
    lines = [line for line in text.splitlines() if "of SIGINT: another process stalled or died" in line]
    assert sorted(line.split(":")[1] for line in lines) == [" rank 0", " rank 1"], text[-3000:]
    assert all(line.startswith("error: rank ") and "did not finish within 20 s of SIGINT" in line for line in lines)
    for rank in (0, 1):
        ended = json.loads((tmp_path / f"exit-rank{rank}.json").read_text())
        assert ended["code"] == 5 and ended["time"] - sent < 30, (rank, ended, sent)


def test_two_machines_rehearsed_on_one(tmp_path: Path, tiny_config: Path) -> None:
    """launch/multi-node.yaml as machine ranks 0 and 1 on 127.0.0.1, one process each: killed,
    relaunched with --auto-resume, and equal to a 1-process run at the same global batch."""
    run = tmp_path / "run"
    args = [str(tiny_config), "--out", str(run), "--auto-resume", *sets(*MLP)]

    def machines(port: int, fault: str = "") -> list[subprocess.Popen[str]]:
        procs = []
        for machine in (0, 1):
            cmd = [*ACCELERATE, "--config_file", str(REPO / "launch" / "multi-node.yaml"), "--num_processes", "2"]
            cmd += ["--machine_rank", str(machine), "--main_process_ip", "127.0.0.1", "--main_process_port", str(port)]
            cmd += ["--mixed_precision", "no", "--dynamo_backend", "no", str(FAULT_CLI), "train", *args]
            procs.append(subprocess.Popen(cmd, env=env(fault), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO))
        return procs

    first = machines(29543, fault="kill@176:1")
    assert all(p.wait(timeout=240) != 0 for p in first)
    assert ckpt.list_checkpoints(run)[-1].name == ckpt.checkpoint_name(160)
    second = machines(29545)
    outputs = [p.communicate(timeout=240) for p in second]
    assert all(p.returncode == 0 for p in second), outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert "resuming at 160 images" in outputs[0][1] and "2 process(es)" in outputs[0][1]

    one = tmp_path / "one"
    result = CliRunner().invoke(app, ["train", str(tiny_config), "--out", str(one), *sets(*MLP)])
    assert result.exit_code == 0, result.output
    assert_same_weights(final_state(run), final_state(one), exact=False)


def test_slurm_script_stops_saves_and_requeues_on_usr1(tmp_path: Path, tiny_config: Path) -> None:
    """launch/slurm.sbatch with stand-ins for srun and scontrol: USR1 (SLURM's warning before
    the time limit) becomes a stop with a checkpoint, then `scontrol requeue`."""
    bin_dir, requeued, run = tmp_path / "bin", tmp_path / "requeued", tmp_path / "run"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text('#!/bin/bash\nexport SLURM_NODEID=0\nexec "$@"\n')
    (bin_dir / "scontrol").write_text(f'#!/bin/bash\ncase "$1" in show) echo 127.0.0.1 ;; requeue) echo "$2" >> {requeued} ;; esac\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    slurm = {"SLURM_JOB_ID": "4242", "SLURM_JOB_NODELIST": "node1", "SLURM_NNODES": "1", "GPUS_PER_NODE": "2"}
    path = f"{bin_dir}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    job_env = env(RUN_DIR=str(run), MASTER_PORT="29547", PATH=path, **slurm)
    overrides = sets(*MLP, "train.total_images=100000")
    sbatch = ["bash", str(REPO / "launch" / "slurm.sbatch"), str(tiny_config), *overrides]
    script = subprocess.Popen(sbatch, env=job_env, stderr=subprocess.PIPE, text=True, cwd=REPO)
    deadline = time.monotonic() + 180
    while not (run / "metrics.jsonl").is_file() and time.monotonic() < deadline and script.poll() is None:
        time.sleep(0.5)
    script.send_signal(signal.SIGUSR1)
    _, err = script.communicate(timeout=120)
    assert script.returncode == 0, err[-3000:]
    assert err.count("stopped by SIGTERM") == 1 and requeued.read_text().split() == ["4242"], err[-3000:]
    newest = ckpt.list_checkpoints(run)[-1]
    assert {p.name for p in newest.iterdir()} >= {"state.pt", "rng-rank0.pt", "rng-rank1.pt"}
