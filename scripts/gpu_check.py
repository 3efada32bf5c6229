"""The GPU check: every CUDA path, the bench ladders, a minute of training and eval, in one
unattended command with a time budget. Run it through scripts/gpu-check.sh (see there).

Stages run in order of value, each with a time budget; a stage that no longer fits is listed
as "not run (budget)". Whatever happens, OUT_DIR gets summary.md (rewritten after every
stage), log.txt, junit.xml, bench.json, details.json and the trained run's samples: at most 8
files. The exit code is non-zero when a check failed. Installs nothing and needs no network.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@dataclass
class Stage:
    name: str
    budget_s: float  # nominal; it gets less when the total budget runs short
    status: str = "not run (budget)"  # pass | FAIL | skipped: why | not run (budget)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


class Check:
    def __init__(self, out: Path, cpu: bool, data: Path | None, budget_s: float) -> None:
        self.out, self.cpu, self.budget_s = out, cpu, budget_s
        self.start = time.monotonic()
        self.work = Path(tempfile.mkdtemp(prefix="fastgan-gpu-check-"))
        self.log = open(out / "log.txt", "a", buffering=1)  # noqa: SIM115 - open for the whole run
        self.details: dict[str, Any] = {"environment": environment(), "mode": "cpu" if cpu else "gpu", "budget_s": budget_s}
        self.bench: dict[str, Any] = {}
        self.fashion = find_fashion(data)
        self.stages: list[Stage] = []
        self.env = dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", PYTHONUNBUFFERED="1")

    # -------------------------------------------------------------- plumbing
    def say(self, line: str) -> None:
        stamp = f"[{time.monotonic() - self.start:6.1f}s] {line}"
        print(stamp, flush=True)
        self.log.write(stamp + "\n")

    def remaining(self) -> float:
        return self.budget_s - (time.monotonic() - self.start)

    def run(self, cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> int:
        """A command with its output in the log; killed with its children at `timeout` (returns 124)."""
        self.say("$ " + " ".join(cmd))
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env or self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
        )
        deadline = time.monotonic() + timeout
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
                return proc.returncode
            if time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                self.say(f"killed after {timeout:.0f} s (stage budget)")
                return 124
            time.sleep(0.05)

    def stage(self, stage: Stage, body: Any, minimum_s: float = 15.0) -> None:
        self.stages.append(stage)
        budget = min(stage.budget_s, self.remaining())
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

    # -------------------------------------------------------------- stages
    def pytest_gpu(self, stage: Stage, budget: float) -> None:
        report = self.work / "gpu-report.jsonl"
        env = dict(self.env, FASTGAN_TEST_BUDGET_S=str(max(budget - 30, 10)), FASTGAN_GPU_REPORT=str(report))
        junit = self.out / "junit.xml"
        rc = self.run(self.py("-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "--junitxml", str(junit), "tests"), budget, env)
        cases = read_junit(junit)
        self.details["gpu_tests"] = cases
        self.details["gpu_test_records"] = [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
        counts = {k: sum(1 for c in cases if c["outcome"] == k) for k in ("passed", "failed", "skipped")}
        budget_skips = sum(1 for c in cases if c["outcome"] == "skipped" and "budget" in c.get("message", ""))
        stage.notes.append(
            f"{counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"
            + (f" ({budget_skips} not run: budget)" if budget_skips else "")
        )
        if rc not in (0, 5) or counts["failed"]:  # 5: nothing collected
            stage.status = "FAIL"
        elif counts["passed"] == 0:
            reasons = sorted({c.get("message", "") for c in cases if c["outcome"] == "skipped"})
            stage.status = "skipped: " + ("; ".join(r for r in reasons if r)[:200] or "no GPU tests ran")
        else:
            stage.status = "pass"

    def bench_ladder(self, name: str, config: str, extra: list[str]) -> Any:
        def body(stage: Stage, budget: float) -> None:
            out = self.work / f"bench-{name}"
            rung_s = 20 if self.cpu else 45
            sizes = (
                ["--steps", "1", "--windows", "1", "--warmup", "1"] if self.cpu else ["--steps", "20", "--windows", "3", "--warmup", "5"]
            )
            rc = self.run(
                self.py("-m", "fastgan", "bench", config, *sizes, "--rung-seconds", str(rung_s), "--out", str(out), *extra), budget
            )
            result = out / "bench.json"
            if result.is_file():
                data = json.loads(result.read_text())
                self.bench[name] = data
                failed = [r["name"] for r in data["rungs"] if r.get("error")]
                ran = [r for r in data["rungs"] if r.get("images_per_s")]
                stage.notes.append(f"{len(ran)} rung(s) ran" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
                if failed or rc not in (0, 124):
                    stage.status = "FAIL"
                else:  # 124: killed at the stage budget; bench.json holds the rungs finished by then
                    stage.status = "pass" if rc == 0 else "pass (partial: stage budget)"
            else:
                stage.status = "FAIL"
                stage.notes.append(f"no bench.json (exit {rc})")

        return body

    def train_and_eval(self, stage: Stage, budget: float) -> None:
        deadline = time.monotonic() + budget
        eval_reserve = 20 if self.cpu else 30  # eval of 10k samples on a GPU: ~15 s after CUDA init
        data = self.data_overrides()
        preset = "configs/fashion-dcgan.toml"
        calibrate = self.work / "calibrate"
        target_s = 10 if self.cpu else 60
        tiny = ["--set", "model.dcgan.width=8"] if self.cpu else []
        self.run(
            self.py(
                "-m",
                "fastgan",
                "bench",
                preset,
                "--ladder",
                "tensor",
                "--steps",
                "2" if self.cpu else "20",
                "--windows",
                "1",
                "--warmup",
                "1" if self.cpu else "3",
                "--rung-seconds",
                "20",
                "--out",
                str(calibrate),
                *data,
                *tiny,
            ),
            min(60, budget / 3),
        )
        rate = 1000.0
        if (calibrate / "bench.json").is_file():
            rungs = json.loads((calibrate / "bench.json").read_text())["rungs"]
            rate = next((r["images_per_s"] for r in rungs if r.get("images_per_s")), rate)
        batch = 64
        total = max(batch * 8, int(rate * target_s) // batch * batch)
        run = self.work / "run"
        every = max(batch, total // 10 // batch * batch)
        sets = [
            f"train.total_images={total}",
            f"train.log_every={every}",
            f"train.sample_every={every * 2}",
            f"train.checkpoint_every={total}",
        ]
        t0 = time.monotonic()
        train_cmd = self.py("-m", "fastgan", "train", preset, "--out", str(run), *data, *tiny, *[a for s in sets for a in ("--set", s)])
        rc = self.run(train_cmd, max(10.0, deadline - time.monotonic() - eval_reserve))
        train_s = time.monotonic() - t0
        n = "200" if self.cpu else "10000"
        rc_eval = self.run(self.py("-m", "fastgan", "eval", str(run), "--n", n), max(10.0, deadline - time.monotonic())) if rc == 0 else -1
        result: dict[str, Any] = {
            "images": total,
            "calibrated_images_per_s": rate,
            "train_wall_s": round(train_s, 1),
            "train_exit": rc,
            "eval_exit": rc_eval,
        }
        written = run / ("eval.json" if n == "10000" else f"eval-n{n}.json")  # one file per kind of eval
        if written.is_file():
            result["eval"] = json.loads(written.read_text())
        self.details["train_eval"] = result
        for name, dst in (("samples/latest.png", "samples.png"), ("samples/timeline.gif", "timeline.gif")):
            src = run / name
            if src.is_file() and src.stat().st_size < 16 * 2**20:
                shutil.copy(src, self.out / dst)
        stage.notes.append(f"{total:,} images in {train_s:.0f} s" + (f"; {eval_summary(result.get('eval'))}" if "eval" in result else ""))
        stage.status = "pass" if rc == 0 and rc_eval == 0 else "FAIL"

    def tutorial_loop(self, stage: Stage, budget: float) -> None:
        """The classic MNIST DCGAN tutorial's loop (its own model) on the same device and batch as the 28 px ladder's eager rung."""
        out = self.work / "tutorial.json"
        sizes = (
            ["--model", "mlp", "--batch", "16", "--steps", "3", "--workers", "0"]
            if self.cpu
            else ["--batch", "256", "--steps", "100", "--workers", "8"]
        )
        data = ["--data", str(self.fashion)] if self.fashion is not None else []
        if not data:
            stage.status = "skipped: the tutorial loop reads Fashion-MNIST, which is not here"
            return
        rc = self.run(
            self.py("benchmarks/tutorial_loop.py", *sizes, *data, "--device", "cpu" if self.cpu else "cuda", "--json", str(out)), budget
        )
        if out.is_file():
            result = json.loads(out.read_text())
            self.details["tutorial_loop"] = result
            stage.notes.append(f"{result['images_per_s']:,.0f} images/s ({result['model']}, batch {result['batch']})")
        stage.status = "pass" if rc == 0 and out.is_file() else "FAIL"

    def dali_vs_loader(self, stage: Stage, budget: float) -> None:
        if self.cpu:
            stage.status = "skipped: GPU-only (DALI's mixed JPEG decoder and GPU operators need a GPU)"
            return
        probe = subprocess.run(self.py("-c", "import nvidia.dali"), env=self.env, capture_output=True)
        if probe.returncode != 0:
            stage.status = "skipped: DALI is not installed here (import nvidia.dali failed)"
            return
        out = self.work / "data.json"
        rc = self.run(
            self.py(
                "benchmarks/bench_data.py",
                "--datasets",
                "jpeg-folder",
                "--backends",
                "torchvision",
                "dali",
                "--num-workers",
                "8",
                "--seconds",
                "8",
                "--num-jpegs",
                "2000",
                "--jpeg-size",
                "64",
                "--out",
                str(out),
            ),
            budget,
        )
        if out.is_file():
            self.details["data_loaders"] = json.loads(out.read_text())
        stage.status = "pass" if rc == 0 else "FAIL"

    # -------------------------------------------------------------- data
    def data_overrides(self) -> list[str]:
        if self.fashion is not None:
            return ["--set", f"data.root={self.fashion}", "--set", "data.download=false"]
        return ["--set", f"data.source=npy:{self.synthetic(28, 1, 10_000)}"]

    def synthetic(self, size: int, channels: int, n: int) -> Path:
        import numpy as np

        path = self.work / f"synthetic-{channels}x{size}.npy"
        if not path.exists():
            rng = np.random.default_rng(0)
            np.save(path, rng.integers(0, 256, size=(n, channels, size, size), dtype=np.uint8))
            np.save(path.with_name(path.stem + ".labels.npy"), (np.arange(n) % 10).astype(np.int64))
        return path

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


def find_fashion(data: Path | None) -> Path | None:
    from_config = Path("data") / "fashion-mnist"
    for place in (data, from_config, Path("/usr/share/datasets/fashion-mnist")):
        if place is not None and all((place / f).is_file() for f in FASHION_FILES):
            return place.resolve()
    return None


def environment() -> dict[str, Any]:
    env: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "python": platform.python_version(), "host": platform.node()}
    try:
        import torch

        env["torch"] = torch.__version__
        env["cuda"] = torch.version.cuda
        env["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    except Exception as e:  # noqa: BLE001
        env["torch"] = f"unavailable ({e})"
    for pkg in ("accelerate", "triton", "nvidia-dali-cuda130"):
        try:
            import importlib.metadata

            env[pkg] = importlib.metadata.version(pkg)
        except Exception:  # noqa: BLE001
            env[pkg] = "not installed"
    try:
        sys.path.insert(0, str(REPO))
        from fastgan.hardware import cpu_info

        env["cpu"] = {k: v for k, v in cpu_info().items() if k != "flags"}
    except Exception as e:  # noqa: BLE001
        env["cpu"] = str(e)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    env["commit"] = commit.stdout.strip() or "unknown (not a git checkout)"
    return env


def read_junit(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = "failed", (child.get("message") or "")[:300]
            elif child.tag == "skipped":
                outcome, message = "skipped", (child.get("message") or "")[:200]
        cases.append({"name": case.get("name", ""), "seconds": float(case.get("time", 0)), "outcome": outcome, "message": message})
    return cases


def eval_summary(ev: dict[str, Any] | None) -> str:
    if not ev:
        return ""
    metrics = ev.get("metrics", ev)
    shown = [f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)) and k in ("fd", "kid", "precision", "recall")]
    return ", ".join(shown)


def summary_markdown(check: Check) -> str:
    env = check.details["environment"]
    lines = [
        f"# fastgan GPU check ({check.details['mode']} mode)",
        "",
        f"- device: {env.get('device')}; torch {env.get('torch')} (CUDA {env.get('cuda')}); accelerate {env.get('accelerate')}; "
        f"triton {env.get('triton')}; python {env.get('python')}",
        f"- cpu: {env.get('cpu')}",
        f"- date: {env.get('date')}; commit {env.get('commit')}; budget {check.budget_s:.0f} s, "
        f"elapsed {time.monotonic() - check.start:.0f} s",
        "",
        "## Checks",
        "",
        "| check | result | time | notes |",
        "|---|---|---|---|",
    ]
    lines += [f"| {s.name} | {s.status} | {s.seconds:.0f} s | {'; '.join(s.notes)} |" for s in check.stages]
    lines += [
        "",
        "## Bench rungs",
        "",
        "| ladder | rung | images/s | speed-up | MFU | launches/step | outside G/D | warm-up | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for ladder, data in check.bench.items():
        for r in data.get("rungs", []):
            if r.get("skipped") or r.get("error"):
                lines.append(
                    f"| {ladder} | {r['name']} | {'skipped' if r.get('skipped') else 'FAILED'} | | | | | | "
                    f"{r.get('skipped') or r.get('error')} |"
                )
                continue
            mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else ""
            lines.append(
                f"| {ladder} | {r['name']} | {r['images_per_s']:,.0f} | {r.get('speedup') or 0:.2f}x | {mfu} | "
                f"{r.get('launches_per_step')} | {r.get('launches_outside_models')} | {r.get('warmup_s') or 0:.1f} s | "
                f"{r.get('note', '')} |"
            )
    records = check.details.get("gpu_test_records", [])
    if records:
        lines += [
            "",
            "## GPU test details",
            "",
            "| test | warm-up (compile) | grad error vs eager (step 1) | launches/step | outside | graph launches |",
            "|---|---|---|---|---|---|",
        ]
        for rec in records:
            if "warmup_s" in rec:
                graphs = rec.get("grad_error_graphs_vs_none")
                versus = f"{rec['grad_error_vs_eager']:.2e}" + (f" (graphs vs none: {graphs:.1e})" if graphs else "")
                lines.append(
                    f"| {rec['test']} | {rec['warmup_s']} s | {versus} | {rec['launches_per_step']} | "
                    f"{rec['launches_outside_models']} | {rec['graph_launches']} |"
                )
            else:
                lines.append(f"| {rec['test']} | data fetch: {rec.get('syncs_per_fetch')} syncs per fetch {rec.get('first', '')} | | | | |")
    cases = check.details.get("gpu_tests", [])
    if cases:
        lines += ["", "## pytest -m gpu", "", "| test | outcome | time |", "|---|---|---|"]
        lines += [f"| {c['name']} | {c['outcome']}{': ' + c['message'] if c['message'] else ''} | {c['seconds']:.1f} s |" for c in cases]
    te = check.details.get("train_eval")
    if te:
        lines += ["", "## Training and eval", "", f"- {json.dumps(te, default=str)[:1500]}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description="fastgan's GPU check (see scripts/gpu-check.sh)")
    p.add_argument("out", type=Path)
    p.add_argument("--cpu", action="store_true", help="the same flow on the CPU at tiny sizes (about a minute)")
    p.add_argument("--data", type=Path, help="a folder with Fashion-MNIST's four idx .gz files")
    p.add_argument("--budget", type=float, help="total seconds (default: 480 on a GPU, 150 with --cpu)")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args.out, args.cpu, args.data, args.budget or (150.0 if args.cpu else 480.0))
    if not args.cpu:
        import torch

        if not torch.cuda.is_available():
            check.say("no CUDA GPU visible: run with --cpu for the CPU rehearsal")
            check.write_summary()
            return 2
    check.say(f"fastgan GPU check -> {args.out} ({'cpu' if args.cpu else 'gpu'} mode); data: {check.fashion or 'synthetic array'}")
    data = check.data_overrides()
    cpu_sets = (
        ["--set", "train.compile_backend=aot_eager", "--set", "model.dcgan.width=8", "--set", "data.num_workers=0"] if args.cpu else []
    )
    ladder28 = "eager,tensor,cudnn_benchmark,bf16,fp16,channels_last,compile,cudagraphs"
    b28 = ["--batch", "16" if args.cpu else "256", "--ladder", "eager,tensor,compile,cudagraphs" if args.cpu else ladder28]
    rgb = check.synthetic(64, 3, 256 if args.cpu else 8192)
    b64 = [
        "--batch",
        "8" if args.cpu else "256",
        "--set",
        f"data.source=npy:{rgb}",
        "--ladder",
        "tensor,cudagraphs" if args.cpu else "eager,tensor,cudnn_benchmark,bf16,channels_last,cudagraphs",
    ]
    check.stage(Stage("pytest -m gpu (every CUDA path)", 160), check.pytest_gpu)
    check.stage(
        Stage("bench: dcgan28, batch 256", 130),
        check.bench_ladder("dcgan28", "benchmarks/configs/gpu-dcgan28.toml", [*b28, *data, *cpu_sets]),
    )
    check.stage(
        Stage("bench: dcgan 64 px, batch 256", 90), check.bench_ladder("dcgan64", "benchmarks/configs/gpu-dcgan64.toml", [*b64, *cpu_sets])
    )
    check.stage(Stage("train ~1 min + eval", 140), check.train_and_eval, minimum_s=30 if not args.cpu else 10)
    check.stage(Stage("tutorial loop on the same device", 40), check.tutorial_loop, minimum_s=10)
    check.stage(Stage("data: DALI vs DataLoader (8 workers)", 40), check.dali_vs_loader, minimum_s=5)
    check.write_summary()
    shutil.rmtree(check.work, ignore_errors=True)
    check.say(f"done: {'FAILED' if check.failed() else 'all checks passed or skipped'}; summary in {args.out / 'summary.md'}")
    return 1 if check.failed() else 0


if __name__ == "__main__":
    sys.exit(main())
