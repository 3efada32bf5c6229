"""The GPU check: today's recipe on CUDA, fastgan against the seeds' loop, the grids, batch
scaling, cifar10-r3gan, a minute of the quickstart recipe and eval, and the older GPU tests, in
one unattended command with a time budget. Run it through scripts/gpu-check.sh (see there).

Stages run in the order of STAGES; their budgets add up to the total (330 s on a GPU), and a
stage also gets what the stages before it left unused. A stage that runs out of time gets
SIGINT first (pytest still writes its junit report, a bench writes the cells it measured), and
SIGKILL only after a grace. A stage that no longer fits is listed as "not run (budget)". What
one GPU cannot prove is listed under "not proven here". Whatever happens, OUT_DIR gets
summary.md (rewritten after every stage), log.txt, junit-recipe.xml, junit.xml, bench.json,
details.json and the quickstart run's samples: at most 8 files. The exit code is non-zero when
a check failed. Installs nothing and needs no network.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_check_report import REPO, environment, eval_summary, read_junit, summary_markdown  # noqa: E402

FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
GPU_BUDGET_S, CPU_BUDGET_S = 330.0, 360.0
# (name, seconds on a GPU): item 5's order. They add up to GPU_BUDGET_S; --cpu and --budget scale them.
STAGES: tuple[tuple[str, float], ...] = (
    ("recipe on CUDA: r3gan + rpgan + lazy R1/R2 + ADA (pytest)", 80),
    ("headline: the seeds' loop vs fastgan's grid, tutorial-dcgan, batch 128", 55),
    ("grid: Radford DCGAN 64 px, batch 256", 30),
    ("batch scaling: fastest cells at 128, 256, 1024, 4096", 30),
    ("cifar10-r3gan on a generated 32 px RGB array", 35),
    ("quickstart recipe ~1 min + fastgan eval", 70),
    ("older GPU tests: dcgan paths, resume, DALI (pytest -m gpu)", 30),
)
SEED_CONFIG, DCGAN64_CONFIG, R3GAN_CONFIG, QUICKSTART_CONFIG = (
    "configs/mnist-dcgan.toml",
    "benchmarks/configs/gpu-dcgan64.toml",
    "configs/cifar10-r3gan.toml",
    "configs/fashion-r3gan.toml",
)
BATCHES = "128,256,1024,4096"
STARTUP_S = 8.0  # a fastgan process: imports, CUDA init and the Accelerator, before a bench's --budget starts


@dataclass
class Stage:
    name: str
    budget_s: float  # nominal: the stages' budgets add up to the total
    status: str = "not run (budget)"  # pass | pass (partial: ...) | FAIL | skipped: why | not run (budget)
    seconds: float = 0.0
    given_s: float = 0.0  # what it was given: its budget plus what earlier stages left
    notes: list[str] = field(default_factory=list)


@dataclass
class Ran:
    rc: int
    stopped: str = ""  # "" | "SIGINT" | "SIGINT, then SIGKILL" (the stage's time ran out)


class Check:
    def __init__(self, out: Path, cpu: bool, data: Path | None, budget_s: float) -> None:
        self.out, self.cpu, self.budget_s = out, cpu, budget_s
        self.start = time.monotonic()
        self.work = Path(tempfile.mkdtemp(prefix="fastgan-gpu-check-"))
        self.log = open(out / "log.txt", "a", buffering=1)  # noqa: SIM115 - open for the whole run
        self.details: dict[str, Any] = {"environment": environment(), "mode": "cpu" if cpu else "gpu", "budget_s": budget_s}
        self.bench: dict[str, Any] = {}
        self.fashion = find_fashion(data)
        scale = budget_s / GPU_BUDGET_S
        self.plan = [Stage(name, seconds * scale) for name, seconds in STAGES]
        self.stages: list[Stage] = []
        self.env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", PYTHONUNBUFFERED="1")
        self.grace_s = 5.0 if cpu else 10.0  # between SIGINT and SIGKILL

    # -------------------------------------------------------------- plumbing
    def say(self, line: str) -> None:
        stamp = f"[{time.monotonic() - self.start:6.1f}s] {line}"
        print(stamp, flush=True)
        self.log.write(stamp + "\n")

    def remaining(self) -> float:
        return self.budget_s - (time.monotonic() - self.start)

    def run(
        self, cmd: list[str], timeout: float, env: dict[str, str] | None = None, first: int = signal.SIGINT, grace: float | None = None
    ) -> Ran:
        """A command with its output in the log. At `timeout` minus the grace it gets `first`
        (SIGINT: pytest writes its report, a bench what it measured; SIGTERM: fastgan train
        saves a checkpoint), and SIGKILL at `timeout`, with its whole process group."""
        self.say("$ " + " ".join(cmd))
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env or self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            preexec_fn=default_sigint,
        )  # fmt: skip
        grace = min(self.grace_s, timeout / 4) if grace is None else min(grace, timeout / 2)
        soft, hard = time.monotonic() + timeout - grace, time.monotonic() + timeout
        stopped = ""
        assert proc.stdout is not None
        os.set_blocking(proc.stdout.fileno(), False)
        while True:
            line = proc.stdout.readline()
            if line:
                sys.stdout.write(line)
                self.log.write(line)
                continue
            if proc.poll() is not None:
                rest = proc.stdout.read() or ""
                sys.stdout.write(rest)
                self.log.write(rest)
                return Ran(proc.returncode, stopped)
            now = time.monotonic()
            if not stopped and now > soft:
                stopped = signal.Signals(first).name
                self.say(f"{stopped} after {timeout - grace:.0f} s (stage budget); SIGKILL in {grace:.0f} s unless it ends")
                _signal_group(proc.pid, first)
            elif now > hard:
                stopped += ", then SIGKILL"
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
                self.say(f"killed after {timeout:.0f} s (stage budget)")
                return Ran(-signal.SIGKILL, stopped)
            time.sleep(0.05)

    def stage(self, index: int, body: Callable[[Stage, float], None], minimum_s: float = 10.0) -> None:
        stage = self.plan[index]
        self.stages.append(stage)
        later = sum(s.budget_s for s in self.plan[index + 1 :])
        budget = max(min(stage.budget_s, self.remaining()), self.remaining() - later)  # its own, plus what earlier stages left
        stage.given_s = budget
        if budget < minimum_s:
            self.say(f"== {stage.name}: not run (budget: {self.remaining():.0f} s left)")
            self.write_summary()
            return
        self.say(f"== {stage.name} (budget {budget:.0f} s)")
        t0 = time.monotonic()
        try:
            body(stage, budget)
        except Exception as e:  # noqa: BLE001 - a broken stage is a failed check, and the rest still run
            stage.status, stage.notes = "FAIL", [*stage.notes, f"{type(e).__name__}: {e}"]
        stage.seconds = time.monotonic() - t0
        self.say(f"== {stage.name}: {stage.status} in {stage.seconds:.0f} s")
        self.write_summary()

    def py(self, *args: str) -> list[str]:
        return [sys.executable, *args]

    def left(self, deadline: float) -> float:
        return max(0.0, deadline - time.monotonic())

    # -------------------------------------------------------------- stages
    def pytest_stage(self, which: str, args: list[str], junit: Path) -> Callable[[Stage, float], None]:
        def body(stage: Stage, budget: float) -> None:
            report = self.work / f"gpu-report-{which}.jsonl"
            env = dict(self.env, FASTGAN_TEST_BUDGET_S=str(max(budget - 3 * self.grace_s, 5)), FASTGAN_GPU_REPORT=str(report))
            cmd = self.py("-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "--junitxml", str(junit), *args)
            ran = self.run(cmd, budget, env)
            cases = read_junit(junit)
            self.details[f"pytest_{which}"] = cases
            if report.exists():
                self.details.setdefault("gpu_test_records", []).extend(json.loads(x) for x in report.read_text().splitlines())
            counts = {k: sum(1 for c in cases if c["outcome"] == k) for k in ("passed", "failed", "skipped")}
            budget_skips = sum(1 for c in cases if c["outcome"] == "skipped" and "budget" in c.get("message", ""))
            stage.notes.append(
                f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
                + (f" ({budget_skips} not run: budget)" if budget_skips else "")
                + (f"; stopped at the budget ({ran.stopped})" if ran.stopped else "")
            )
            if counts["failed"] or (ran.rc not in (0, 5) and not ran.stopped):  # 5: nothing collected
                stage.status = "FAIL"
            elif counts["passed"] == 0:
                reasons = sorted({c.get("message", "") for c in cases if c["outcome"] == "skipped"})
                stage.status = "skipped: " + ("; ".join(r for r in reasons if r)[:200] or "no GPU tests ran")
            else:
                stage.status = "pass (partial: stage budget)" if ran.stopped or budget_skips else "pass"

        return body

    def run_bench(self, label: str, args: list[str], budget: float, stem: str) -> tuple[dict[str, Any] | None, Ran]:
        """`fastgan bench ARGS --budget` within `budget` seconds; its JSON (partial if stopped) under `label`."""
        out = self.work / label
        inner = max(5.0, budget - STARTUP_S - self.grace_s - 2)  # --budget starts after imports and CUDA init; SIGINT is the backstop
        ran = self.run(self.py("-m", "fastgan", "bench", *args, "--budget", f"{inner:.0f}", "--out", str(out), *self.sizes()), budget)
        path = out / f"{stem}.json"
        if not path.is_file():
            return None, ran
        data = json.loads(path.read_text())
        self.bench[label] = data
        self.write_summary()
        return data, ran

    def judge(self, stage: Stage, label: str, data: dict[str, Any] | None, ran: Ran) -> None:
        """A cell that failed for a reason other than time or memory fails the stage; the rest is data."""
        if data is None:
            stage.status = "FAIL"
            stage.notes.append(f"{label}: no result (exit {ran.rc}{', ' + ran.stopped if ran.stopped else ''})")
            return
        rungs = data.get("rungs", [])
        ran_cells = [r["name"] for r in rungs if r.get("images_per_s")]
        expected = ("time box", "interrupted", "out of memory", "OutOfMemory")
        bad = [r["name"] for r in rungs if r.get("error") and not any(e in r["error"] for e in expected)]
        stage.notes.append(
            f"{label}: {len(ran_cells)} cell(s) ran, fastest {data.get('best') or 'none'}" + (f"; FAILED: {', '.join(bad)}" if bad else "")
        )
        if bad or (ran.rc not in (0, 130) and not ran.stopped):
            stage.status = "FAIL"
        elif stage.status != "FAIL":
            stage.status = "pass (partial: stage budget)" if ran.stopped or data.get("interrupted") else "pass"

    def headline(self, stage: Stage, budget: float) -> None:
        deadline = time.monotonic() + budget
        batch = "16" if self.cpu else "128"
        tutorial = self.tutorial_loop(int(batch), min(25.0 if not self.cpu else 40.0, budget / 3))
        headline: dict[str, Any] = {"batch": int(batch), "tutorial": tutorial}
        self.details["headline"] = headline
        # The CPU rehearsal checks the flow, not the grid (tests/cli/test_bench.py does): three eager
        # cells, not sixteen that each fill their time box on two cores.
        cells = ["--cells", "fp32/off/contiguous,fp32/off/channels_last,bf16/off/channels_last"] if self.cpu else []
        data, ran = self.run_bench(
            "headline-grid-seed", [SEED_CONFIG, *self.data_overrides(), "--grid", *cells, "--batch", batch], self.left(deadline), "grid"
        )
        self.judge(stage, "seed grid", data, ran)
        if tutorial is None:
            headline["why"] = "the seeds' loop did not run (it reads Fashion-MNIST; see the log)"
            if stage.status != "FAIL":  # a failed grid cell stays the stage's result
                stage.status = "FAIL" if self.fashion is not None else "skipped: the seeds' loop reads Fashion-MNIST, which is not here"
            return
        best = best_cell(data)
        headline.update(tutorial_images_per_s=tutorial["images_per_s"])
        if best is None:
            headline["why"] = "no cell of fastgan's grid ran"
            return
        headline.update(
            best_cell=best["name"], fastgan_images_per_s=best["images_per_s"], ratio=best["images_per_s"] / tutorial["images_per_s"]
        )
        stage.notes.insert(0, f"{headline['ratio']:.1f}x: {best['images_per_s']:,.0f} vs {tutorial['images_per_s']:,.0f} images/s")

    def tutorial_loop(self, batch: int, timeout: float) -> dict[str, Any] | None:
        """The seeds' DCGAN loop as they wrote it (per-image transforms, DataLoader with 0 workers) on this device."""
        if self.fashion is None:
            return None
        out = self.work / f"tutorial-{batch}.json"
        steps = "3" if self.cpu else "100"
        ran = self.run(
            self.py("benchmarks/tutorial_loop.py", "--model", "dcgan", "--batch", str(batch), "--steps", steps, "--data", str(self.fashion),
                    "--device", "cpu" if self.cpu else "cuda", "--json", str(out)),
            timeout,
        )  # fmt: skip
        if ran.rc != 0 or not out.is_file():
            return None
        result: dict[str, Any] = json.loads(out.read_text())
        self.details.setdefault("tutorial_loops", []).append(result)
        return result

    def grid64(self, stage: Stage, budget: float) -> None:
        rgb = self.synthetic(64, 3, 256 if self.cpu else 8192)
        args = [DCGAN64_CONFIG, "--set", f"data.source=npy:{rgb}", "--grid", "--batch", "8" if self.cpu else "256", *self.tiny("dcgan")]
        data, ran = self.run_bench("grid-dcgan64", args, budget, "grid")
        self.judge(stage, "64 px grid", data, ran)

    def batch_scaling(self, stage: Stage, budget: float) -> None:
        deadline = time.monotonic() + budget
        batches = "8,16,32" if self.cpu else BATCHES
        seed = self.bench.get("headline-grid-seed")
        data, ran = self.run_bench("batches-seed", [SEED_CONFIG, *self.data_overrides(), "--batch", batches, *cell_overrides(seed)],
                               self.left(deadline) * 0.6, "batches")  # fmt: skip
        self.judge(stage, "tutorial-dcgan batches", data, ran)
        best = best_cell(data)
        headline = self.details.get("headline") or {}
        if best is not None and headline.get("tutorial_images_per_s"):
            at_batch = int(best["name"].split()[-1])
            at = {"batch": at_batch, "fastgan_images_per_s": best["images_per_s"]}
            if at_batch == headline["batch"]:  # the headline's run of the seeds' loop is at that batch
                at.update(tutorial_images_per_s=headline["tutorial_images_per_s"],
                          ratio=best["images_per_s"] / headline["tutorial_images_per_s"])  # fmt: skip
            elif self.left(deadline) > 40:
                tutorial = self.tutorial_loop(at_batch, min(20.0, self.left(deadline) / 3))
                if tutorial:
                    at.update(tutorial_images_per_s=tutorial["images_per_s"], ratio=best["images_per_s"] / tutorial["images_per_s"])
            headline["at_best_batch"] = at
        if self.left(deadline) > 20:
            rgb = self.synthetic(64, 3, 256 if self.cpu else 8192)
            grid64 = self.bench.get("grid-dcgan64")
            args = [DCGAN64_CONFIG, "--set", f"data.source=npy:{rgb}", "--batch", batches, *cell_overrides(grid64), *self.tiny("dcgan")]
            data, ran = self.run_bench("batches-dcgan64", args, self.left(deadline), "batches")
            self.judge(stage, "64 px batches", data, ran)
        else:
            stage.notes.append("64 px batches: not run (budget)")

    def r3gan(self, stage: Stage, budget: float) -> None:
        rgb = self.synthetic(32, 3, 256 if self.cpu else 8192)
        cells = "bf16/off/channels_last,bf16/default/channels_last,bf16/reduce-overhead/channels_last"
        small = ["--set", "model.r3gan.stage_widths=[16, 16, 16, 16]", "--set", "model.r3gan.stage_blocks=[1, 1, 1, 1]"] if self.cpu else []
        args = [R3GAN_CONFIG, "--set", f"data.source=npy:{rgb}", "--set", "train.eval_every=0", "--grid", "--cells", cells,
                "--batch", "16" if self.cpu else "256", *small]  # fmt: skip
        data, ran = self.run_bench("cifar10-r3gan", args, budget, "grid")
        self.judge(stage, "cifar10-r3gan", data, ran)

    def quickstart(self, stage: Stage, budget: float) -> None:
        """The quickstart recipe for about a minute (stopped by SIGTERM, which saves a checkpoint), then fastgan eval."""
        deadline = time.monotonic() + budget
        eval_reserve = 30.0 if self.cpu else 25.0  # eval of 10k samples on a GPU: ~15 s after CUDA init
        save_grace = 20.0 if self.cpu else 10.0  # SIGTERM -> the step ends, a checkpoint is written, exit 143
        run = self.work / "quickstart"
        train_s = max(10.0, min(30.0 if self.cpu else 60.0, budget - eval_reserve - save_grace))  # startup included
        every = (2_048, 4_096) if self.cpu else (100_352, 200_704)  # logs and sample grids, in images (multiples of batch 128)
        sets = ["train.total_images=1_000_000_000", f"train.log_every={every[0]}", f"train.sample_every={every[1]}",
                "train.checkpoint_every=1_000_000_000"]  # fmt: skip
        cmd = self.py(
            "-m", "fastgan", "train", QUICKSTART_CONFIG, "--out", str(run), *self.data_overrides(), *[a for s in sets for a in ("--set", s)]
        )  # fmt: skip
        t0 = time.monotonic()
        ran = self.run(cmd, train_s + save_grace, first=signal.SIGTERM, grace=save_grace)
        train_wall = time.monotonic() - t0
        n = "200" if self.cpu else "10000"
        evaluated = ran.rc in (0, 143)
        rc_eval = self.run(self.py("-m", "fastgan", "eval", str(run), "--n", n), max(10.0, self.left(deadline))).rc if evaluated else -1
        result: dict[str, Any] = {"train_wall_s": round(train_wall, 1), "train_exit": ran.rc, "stopped": ran.stopped, "eval_exit": rc_eval}
        saved = sorted((run / "checkpoints").glob("nimg-*")) if (run / "checkpoints").is_dir() else []
        if saved:
            result["images"] = int(saved[-1].name.split("-")[1])  # the checkpoint SIGTERM wrote
        metrics = run / "metrics.jsonl"
        rows = [json.loads(x) for x in metrics.read_text().splitlines() if x.strip()] if metrics.is_file() else []
        if rows:
            result["images_per_s"] = rows[-1].get("images_per_s")  # the last log interval's
        written = run / ("eval.json" if n == "10000" else f"eval-n{n}.json")  # one file per kind of eval
        if written.is_file():
            result["eval"] = json.loads(written.read_text())
        self.details["quickstart"] = result
        for name, dst in (("samples/latest.png", "samples.png"), ("samples/timeline.gif", "timeline.gif")):
            src = run / name
            if src.is_file() and src.stat().st_size < 16 * 2**20:
                shutil.copy(src, self.out / dst)
        stage.notes.append(f"{result.get('images') or 0:,} images in {train_wall:.0f} s (exit {ran.rc})"
                           + (f"; {eval_summary(result.get('eval'))}" if "eval" in result else ""))  # fmt: skip
        stage.status = "pass" if evaluated and rc_eval == 0 else "FAIL"

    # -------------------------------------------------------------- data and sizes
    def sizes(self) -> list[str]:
        if self.cpu:  # aot_eager: no C++ build on the CPU (a minute per compiled cell); the real inductor runs on the GPU
            return ["--steps", "1", "--windows", "1", "--warmup", "2", "--rung-seconds", "10", "--set", "train.compile_backend=aot_eager"]
        return ["--steps", "20", "--windows", "3", "--warmup", "5", "--rung-seconds", "25"]

    def tiny(self, family: str) -> list[str]:
        return ["--set", "model.dcgan.width=8"] if self.cpu and family == "dcgan" else []

    def data_overrides(self) -> list[str]:
        if self.fashion is not None:
            return ["--set", "data.source=fashion-mnist", "--set", f"data.root={self.fashion}", "--set", "data.download=false"]
        return ["--set", f"data.source=npy:{self.synthetic(28, 1, 10_000)}"]

    def synthetic(self, size: int, channels: int, n: int) -> Path:
        import numpy as np

        path = self.work / f"synthetic-{channels}x{size}.npy"
        if not path.exists():
            rng = np.random.default_rng(0)
            np.save(path, rng.integers(0, 256, size=(n, channels, size, size), dtype=np.uint8))
            np.save(path.with_name(path.stem + ".labels.npy"), (np.arange(n) % 10).astype(np.int64))
        return path

    def not_proven_here(self) -> list[str]:
        lines = []
        dali = subprocess.run(self.py("-c", "import nvidia.dali"), env=self.env, capture_output=True).returncode == 0
        if not dali:
            lines.append("DALI: not installed here (import nvidia.dali failed), so its GPU decode and operators "
                         "(tests/gpu/test_cuda_dali.py) did not run; its CPU pipelines are tested on the CPU")  # fmt: skip
        lines.append("multi-process NCCL: this check runs one process on one GPU; DDP is tested with 2 gloo processes on the CPU "
                     "(tests/distributed/), not over NCCL")  # fmt: skip
        lines.append("the NCCL stall path (a stalled peer ends the job with fastgan's line and exit code): needs 2+ GPUs; "
                     "tested over gloo on the CPU (tests/distributed/test_resilience.py)")  # fmt: skip
        if self.cpu:
            lines.insert(0, "anything on CUDA: this was the CPU rehearsal (--cpu); GPU tests were skipped, compile used aot_eager")
        return lines

    # -------------------------------------------------------------- report
    def write_summary(self) -> None:
        (self.out / "details.json").write_text(
            json.dumps({**self.details, "stages": [vars(s) for s in self.stages]}, indent=2, default=str)
        )
        (self.out / "bench.json").write_text(json.dumps(self.bench, indent=2))
        (self.out / "summary.md").write_text(summary_markdown(self))

    def failed(self) -> bool:
        return any(s.status == "FAIL" for s in self.stages)


# ------------------------------------------------------------------ helpers


def default_sigint() -> None:
    """In the stage's process, before exec: SIGINT back to its default. A check started in the
    background by a shell without job control (`cmd &` in a script, nohup) has SIGINT ignored,
    children inherit an ignored signal across exec, and Python then never turns SIGINT into
    KeyboardInterrupt: the stage would get SIGKILL without writing its report."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended by itself meanwhile
        os.killpg(pid, signum)


def best_cell(data: dict[str, Any] | None) -> dict[str, Any] | None:
    ran = [r for r in (data or {}).get("rungs", []) if r.get("images_per_s")]
    return max(ran, key=lambda r: r["images_per_s"]) if ran else None


def cell_overrides(grid: dict[str, Any] | None) -> list[str]:
    """`--set`s for the fastest cell of a grid.json (its precision, compile mode and layout), or none."""
    best = best_cell(grid)
    if grid is None or best is None:
        return []
    train = grid["configs"][best["name"]]["train"]
    keys = ("precision", "compile", "channels_last")
    return [a for k in keys for a in ("--set", f"train.{k}={str(train[k]).lower() if isinstance(train[k], bool) else train[k]}")]


def find_fashion(data: Path | None) -> Path | None:
    from_config = Path("data") / "fashion-mnist"
    for place in (data, from_config, Path("/usr/share/datasets/fashion-mnist")):
        if place is not None and all((place / f).is_file() for f in FASHION_FILES):
            return place.resolve()
    return None


def main() -> int:
    p = argparse.ArgumentParser(description="fastgan's GPU check (see scripts/gpu-check.sh)")
    p.add_argument("out", type=Path)
    p.add_argument("--cpu", action="store_true", help="the same flow on the CPU at tiny sizes (about 3 minutes)")
    p.add_argument("--data", type=Path, help="a folder with Fashion-MNIST's four idx .gz files")
    p.add_argument("--budget", type=float, help=f"total seconds (default: {GPU_BUDGET_S:.0f} on a GPU, {CPU_BUDGET_S:.0f} with --cpu)")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args.out, args.cpu, args.data, args.budget or (CPU_BUDGET_S if args.cpu else GPU_BUDGET_S))
    if not args.cpu:
        import torch

        if not torch.cuda.is_available():
            check.say("no CUDA GPU visible: run with --cpu for the CPU rehearsal")
            check.write_summary()
            return 2
    check.say(f"fastgan GPU check -> {args.out} ({'cpu' if args.cpu else 'gpu'} mode); data: {check.fashion or 'synthetic array'}")
    check.details["not_proven_here"] = check.not_proven_here()
    check.stage(0, check.pytest_stage("recipe", ["tests/gpu/test_cuda_recipe.py"], args.out / "junit-recipe.xml"))
    check.stage(1, check.headline, minimum_s=20)
    check.stage(2, check.grid64)
    check.stage(3, check.batch_scaling)
    check.stage(4, check.r3gan)
    check.stage(5, check.quickstart, minimum_s=25 if not args.cpu else 15)
    check.stage(6, check.pytest_stage("older", ["tests/gpu", "--ignore", "tests/gpu/test_cuda_recipe.py"], args.out / "junit.xml"))
    check.write_summary()
    shutil.rmtree(check.work, ignore_errors=True)
    check.say(f"done: {'FAILED' if check.failed() else 'all checks passed or skipped'}; summary in {args.out / 'summary.md'}")
    return 1 if check.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
