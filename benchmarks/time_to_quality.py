"""Quality per training second: FD, KID and recall against training seconds, for several recipes.

Each run trains for `--seconds` of training time; every `--every` seconds the clock stops and
the generator (G_ema for fastgan, the plain G for the tutorial loop, which has no EMA) is scored
with fastgan's shipped Fashion-MNIST features: `--samples` generated images against as many test
images, FD, KID and precision/recall with k = 3. After the last point the samples are also
checked for class balance (the shipped classifier's head) and checkerboard texture (power at the
Nyquist frequency against real images', fastgan.metrics.spectrum), and a grid is saved.
Runs are interleaved seed by seed, so a change in machine load spreads over all of them; before
each run the script waits (up to --max-wait s) for the 1-minute load average to fall below
--quiet-below, and records it before and after.

    python benchmarks/time_to_quality.py --seconds 220 --every 44 --seeds 0,1,2 --samples 10000 \\
        --run tutorial --run quickstart=configs/fashion-dcgan.toml --run recipe=configs/fashion-r3gan.toml

`--run NAME=CONFIG[,key=value...]` trains a fastgan preset (with overrides); `--run tutorial` is
benchmarks/tutorial_loop.py's MNIST DCGAN tutorial loop. Writes time-to-quality_<tag>_<date>.json and .png
(and one sample grid per run) under --out.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tutorial_loop, beside this file

from tutorial_loop import SEED_MODEL, TutorialDCGAN  # noqa: E402

from fastgan.config import ModelConfig, load_config  # noqa: E402
from fastgan.data.sources import open_source  # noqa: E402
from fastgan.hardware import cpu_info  # noqa: E402
from fastgan.metrics import compute_metrics  # noqa: E402
from fastgan.metrics.cache import real_features  # noqa: E402
from fastgan.metrics.evaluate import eval_latents, feature_cache_dir, real_sets  # noqa: E402
from fastgan.metrics.feature_net import FEATURE_NET_ID, FeatureCNN, classify, extract_features, load_feature_net  # noqa: E402
from fastgan.metrics.spectrum import nyquist_power  # noqa: E402
from fastgan.sampling.grid import generate_uint8, save_png  # noqa: E402
from fastgan.train.build import build_trainer  # noqa: E402
from fastgan.train.setup import make_accelerator  # noqa: E402
from fastgan.validate import validate  # noqa: E402

METRICS = ("fd", "kid", "pr")
CPU = torch.device("cpu")


@dataclass
class Runner:
    """One training run behind one interface: `step()` trains, `generator()` is what gets scored."""

    step: Callable[[], None]
    generator: Callable[[], nn.Module]
    nimg: Callable[[], int]
    model: ModelConfig
    close: Callable[[], None] = lambda: None


def fastgan_runner(spec: str, seed: int) -> Runner:
    path, *overrides = re.split(r",(?=[a-z_]+\.[A-Za-z0-9_.]+=)", spec)  # commas inside [lists] stay
    cfg = load_config(Path(path), [*overrides, f"train.seed={seed}", "train.cpu=true"])
    validate(cfg)
    trainer = build_trainer(cfg, make_accelerator(cfg), open_source(cfg.data, cfg.model.channels, cfg.model.resolution))
    data = iter(trainer.data)
    return Runner(lambda: trainer.train_step(data), trainer.ready_G_ema, lambda: trainer.cur_nimg, cfg.model)


def tutorial_runner(seed: int) -> Runner:
    loop = TutorialDCGAN(seed=seed)
    return Runner(loop.step, lambda: loop.G, lambda: loop.nimg, SEED_MODEL, loop.close)


def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def wait_quiet(below: float, max_wait: float) -> tuple[float, float]:
    """Sleep until the 1-minute load average is below `below` (or `max_wait` s passed): (load, waited s)."""
    start = time.monotonic()
    while load1() >= below and time.monotonic() - start < max_wait:
        time.sleep(15)
    return load1(), round(time.monotonic() - start)


class Scorer:
    """Real features, real Nyquist power and the feature net, computed once for every run."""

    def __init__(self, samples: int) -> None:
        self.samples = samples
        self.net: FeatureCNN = load_feature_net(CPU)
        cfg = load_config(None, ["data.source=fashion-mnist"])
        real, _ = real_sets(cfg.data, cfg.model, "test", samples, floor=False)
        images = torch.from_numpy(real.images.copy())
        self.real_features = real_features(real.source, real.split, images, self.net, CPU, feature_cache_dir())
        self.real_nyquist = nyquist_power(images)

    def images(self, G: nn.Module, model: ModelConfig, seed: int) -> torch.Tensor:
        z, labels = eval_latents(self.samples, model, seed + 1_000_003, CPU)
        return torch.cat([generate_uint8(G, z[s : s + 1000], labels[s : s + 1000]) for s in range(0, len(z), 1000)])

    def score(self, images: torch.Tensor) -> dict[str, float]:
        return compute_metrics(METRICS, self.real_features, extract_features(self.net, images), {"pr": {"k": 3}})

    def checks(self, images: torch.Tensor) -> dict[str, Any]:
        counts = torch.bincount(classify(self.net, images), minlength=10).tolist()
        return {
            "class_fractions": [c / len(images) for c in counts],
            "min_class_fraction": min(counts) / len(images),
            "nyquist_ratio": nyquist_power(images) / self.real_nyquist,
        }


def train_curve(runner: Runner, scorer: Scorer, seconds: float, every: float, seed: int, label: str) -> dict[str, Any]:
    G = runner.generator()
    points = [{"seconds": 0.0, "nimg": 0, **scorer.score(scorer.images(G, runner.model, seed))}]
    trained, next_eval, cpu_used = 0.0, every, 0.0
    while trained < seconds - 1e-6:
        start, cpu_start = time.perf_counter(), time.process_time()
        while trained + (time.perf_counter() - start) < min(next_eval, seconds):
            runner.step()  # on a CPU the step is done when it returns: no sync needed for the clock
        trained += time.perf_counter() - start
        cpu_used += time.process_time() - cpu_start
        images = scorer.images(runner.generator(), runner.model, seed)  # the clock is stopped from here
        points.append({"seconds": round(trained, 2), "nimg": runner.nimg(), **scorer.score(images)})
        p = points[-1]
        print(f"  {label} seed {seed}: {trained:6.1f} s {p['nimg']:>8,} img  FD {p['fd']:7.2f}  KID {p['kid']:.4f}  "
              f"recall {p['recall']:.3f}  precision {p['precision']:.3f}", flush=True)  # fmt: skip
        next_eval += every
    # CPU seconds this process got per training second and thread: near 1 on a quiet machine; well
    # below 1 means other processes took the cores (two PyTorch processes on 2 cores thrash).
    cpu_share = cpu_used / (trained * torch.get_num_threads())
    print(f"  {label} seed {seed}: CPU share {cpu_share:.2f}", flush=True)
    return {"points": points, "checks": scorer.checks(images), "cpu_share": round(cpu_share, 3), "final_images": images[:64]}


def summarise(curves: dict[str, dict[int, dict[str, Any]]]) -> dict[str, Any]:
    """Per run and eval point: mean and std over seeds of seconds, images, FD, KID, precision, recall."""
    out: dict[str, Any] = {}
    for name, by_seed in curves.items():
        runs = [c["points"] for c in by_seed.values()]
        rows = []
        for i in range(min(len(r) for r in runs)):
            row: dict[str, float] = {}
            for key in ("seconds", "nimg", "fd", "kid", "precision", "recall"):
                values = [r[i][key] for r in runs]
                row[key] = statistics.fmean(values)
                row[key + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            rows.append(row)
        checks = [c["checks"] for c in by_seed.values()]
        out[name] = {
            "points": rows,
            "min_class_fraction": min(c["min_class_fraction"] for c in checks),
            "nyquist_ratio": statistics.fmean(c["nyquist_ratio"] for c in checks),
            "nyquist_ratio_range": [min(c["nyquist_ratio"] for c in checks), max(c["nyquist_ratio"] for c in checks)],
            "cpu_share": [c["cpu_share"] for c in by_seed.values()],
        }
    return out


def plot(summary: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (("fd", "FD (lower: better)", True), ("kid", "KID (lower: better)", False), ("recall", "recall, k=3 (higher: better)", False))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, (key, label, log) in zip(axes, panels, strict=True):
        for name, s in summary.items():
            x = [p["seconds"] for p in s["points"]]
            y = [p[key] for p in s["points"]]
            e = [p[key + "_std"] for p in s["points"]]
            ax.plot(x, y, marker="o", label=name)
            ax.fill_between(x, [a - b for a, b in zip(y, e, strict=True)], [a + b for a, b in zip(y, e, strict=True)], alpha=0.2)
        ax.set_xlabel("training seconds (eval excluded)")
        ax.set_ylabel(label)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def environment() -> dict[str, Any]:
    import accelerate

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "cpu": cpu_info(), "threads": torch.get_num_threads(), "torch": torch.__version__, "accelerate": accelerate.__version__,
        "python": platform.python_version(), "git_commit": commit, "date": time.strftime("%Y-%m-%d %H:%M"),
        "device": "cuda" if torch.cuda.is_available() else "cpu", "feature_net": FEATURE_NET_ID,
    }  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", action="append", required=True, help="tutorial, or NAME=CONFIG[,section.key=value...] (repeatable)")
    p.add_argument("--seconds", type=float, default=220.0, help="training seconds per run")
    p.add_argument("--every", type=float, default=44.0, help="training seconds between evaluations")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--samples", type=int, default=10_000, help="generated images per evaluation, and real test images")
    p.add_argument("--quiet-below", type=float, default=0.6, help="wait for the 1-minute load average to fall below this")
    p.add_argument("--max-wait", type=float, default=1200.0, help="longest wait for a quiet machine per run, in s")
    p.add_argument("--tag", default="cpu", help="device tag in the file names, e.g. cpu-xeon-2c")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = p.parse_args()

    specs = dict(r.split("=", 1) if "=" in r else (r, r) for r in args.run)
    seeds = [int(s) for s in args.seeds.split(",")]
    scorer = Scorer(args.samples)
    curves: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in specs}
    loads: list[dict[str, Any]] = []
    for seed in seeds:
        for name, spec in specs.items():
            before, waited = wait_quiet(args.quiet_below, args.max_wait)
            print(f"{name} seed {seed}: load {before:.2f} after waiting {waited} s", flush=True)
            runner = tutorial_runner(seed) if spec == "tutorial" else fastgan_runner(spec, seed)
            curves[name][seed] = train_curve(runner, scorer, args.seconds, args.every, seed, name)
            runner.close()
            loads.append({"run": name, "seed": seed, "load_before": before, "waited_s": waited, "load_after": load1()})

    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"time-to-quality_{args.tag}_{time.strftime('%Y-%m-%d')}"
    for name, by_seed in curves.items():
        first = by_seed[seeds[0]]["final_images"]
        save_png(first, 8, args.out / f"{stem}_{name}.png")
        for c in by_seed.values():
            del c["final_images"]
    summary = summarise(curves)
    record = {
        "command": " ".join(sys.argv), "specs": specs, "seconds": args.seconds, "every": args.every, "seeds": seeds,
        "samples": args.samples, "metrics": "fastgan Fashion-MNIST features vs the test split; pr with k = 3",
        "environment": environment(), "loadavg": loads, "summary": summary, "runs": curves,
    }  # fmt: skip
    (args.out / f"{stem}.json").write_text(json.dumps(record, indent=2))
    plot(summary, args.out / f"{stem}.png", f"time to quality, {args.tag}, {len(seeds)} seeds, {args.samples:,} samples")
    for name, s in summary.items():
        last = s["points"][-1]
        print(f"{name:>12}: {last['seconds']:.0f} s, {last['nimg']:,.0f} img: FD {last['fd']:.2f} ± {last['fd_std']:.2f}, "
              f"KID {last['kid']:.4f}, recall {last['recall']:.3f}, precision {last['precision']:.3f}, "
              f"min class {s['min_class_fraction']:.3f}, Nyquist ratio {s['nyquist_ratio']:.2f}")  # fmt: skip
    print(f"wrote {args.out / stem}.json and .png")


if __name__ == "__main__":
    main()
