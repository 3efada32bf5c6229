"""Quality per training second: FD, KID and recall against training seconds, for several recipes.

Each run trains for `--seconds` of training time; every `--every` seconds the clock stops and
the generator (G_ema for fastgan, the plain G for the tutorial loop, which has no EMA) is scored
with fastgan's shipped Fashion-MNIST features: `--samples` generated images against as many test
images, FD, KID and precision/recall with k = 3. After the last point the samples are also
checked for class balance (the shipped classifier's head) and checkerboard texture (power at the
Nyquist frequency against real images', fastgan.metrics.spectrum), and a grid is saved.
A fastgan run with post-hoc EMA (`train.phema_every > 0`) keeps its profiles' snapshots in memory
every `phema_every` images, inside the training clock as a run writes them, and after the last
point G_ema is rebuilt and scored for each `--sigma-rel` (EDM2's least squares, as `fastgan ema`).
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
import copy
import json
import os
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
from fastgan.run.posthoc_ema import parse_sigma_rels, weighted_sum  # noqa: E402
from fastgan.sampling.grid import generate_uint8, save_png  # noqa: E402
from fastgan.train.build import Trainer, build_trainer  # noqa: E402
from fastgan.train.ema import recalibrate_batchnorm  # noqa: E402
from fastgan.train.loop import crossed  # noqa: E402
from fastgan.train.phema import posthoc_coefficients  # noqa: E402
from fastgan.train.setup import make_accelerator  # noqa: E402
from fastgan.validate import validate  # noqa: E402

METRICS = ("fd", "kid", "pr")
CPU = torch.device("cpu")


class PosthocSweep:
    """Post-hoc EMA without a run folder: the tracked profiles copied every train.phema_every
    images (what a run writes to RUN/phema/), and G_ema rebuilt from them for any sigma_rel."""

    def __init__(self, trainer: Trainer) -> None:
        self.trainer, self.every = trainer, trainer.cfg.train.phema_every
        self.snapshots: list[tuple[int, float, dict[str, torch.Tensor]]] = []  # (nimg, sigma_rel, G's parameters)

    def after_step(self, before: int) -> None:
        if crossed(before, self.trainer.cur_nimg, self.every):
            self.take()

    def take(self) -> None:
        phema, n = self.trainer.step.phema, self.trainer.cur_nimg
        self.snapshots += [(n, sigma_rel, phema.weights(k)) for k, sigma_rel in enumerate(phema.sigma_rels)]

    def generator(self, sigma_rel: float) -> nn.Module:
        """G_ema for `sigma_rel` at the images seen now, with BatchNorm statistics of its own."""
        t = self.trainer
        if not self.snapshots or self.snapshots[-1][0] != t.cur_nimg:
            self.take()  # the run's last snapshot, as PhemaSnapshots writes at the end
        nimgs, sigma_rels, weights = zip(*self.snapshots, strict=True)
        x = posthoc_coefficients(list(nimgs), list(sigma_rels), t.cur_nimg, sigma_rel)
        G = copy.deepcopy(t.G_ema)  # its buffers; the parameters are the reconstruction's
        G.load_state_dict(weighted_sum(zip(weights, x, strict=True)), strict=False)
        m = t.cfg.model
        recalibrate_batchnorm(
            G, z_dim=m.z_dim, latent=m.latent, num_classes=m.num_classes if m.conditional else 1,
            seed=(t.cfg.train.seed * 1_000_003 + t.cur_nimg) % 2**62, device=t.accelerator.device,
        )  # fmt: skip
        return G


@dataclass
class Runner:
    """One training run behind one interface: `step()` trains, `generator()` is what gets scored."""

    step: Callable[[], None]
    generator: Callable[[], nn.Module]
    nimg: Callable[[], int]
    model: ModelConfig
    close: Callable[[], None] = lambda: None
    posthoc: PosthocSweep | None = None  # a fastgan run with train.phema_every > 0


def fastgan_runner(spec: str, seed: int) -> Runner:
    path, *overrides = re.split(r",(?=[a-z_]+\.[A-Za-z0-9_.]+=)", spec)  # commas inside [lists] stay
    cfg = load_config(Path(path), [*overrides, f"train.seed={seed}", "train.cpu=true"])
    validate(cfg)
    trainer = build_trainer(cfg, make_accelerator(cfg), open_source(cfg.data, cfg.model.channels, cfg.model.resolution))
    data = iter(trainer.data)
    sweep = PosthocSweep(trainer) if cfg.train.phema_every > 0 else None

    def step() -> None:
        before = trainer.cur_nimg
        trainer.train_step(data)
        if sweep is not None:
            sweep.after_step(before)

    return Runner(step, trainer.ready_G_ema, lambda: trainer.cur_nimg, cfg.model, posthoc=sweep)


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


def train_curve(
    runner: Runner, scorer: Scorer, seconds: float, every: float, seed: int, label: str, sigma_rels: list[float]
) -> dict[str, Any]:
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
    curve = {"points": points, "checks": scorer.checks(images), "cpu_share": round(cpu_share, 3), "final_images": images[:64]}
    if runner.posthoc is not None and sigma_rels:
        curve["posthoc"], best_images = posthoc_scores(runner.posthoc, scorer, runner.model, seed, sigma_rels, label)
        curve["posthoc_images"] = best_images[:64]
    return curve


def posthoc_scores(
    sweep: PosthocSweep, scorer: Scorer, model: ModelConfig, seed: int, sigma_rels: list[float], label: str
) -> tuple[list[dict[str, Any]], torch.Tensor]:
    """Each sigma_rel's scores at the end of a run (on the same latents as the fixed EMA), the best's images."""
    rows, best_images, best_fd = [], torch.empty(0), float("inf")
    for sigma_rel in sigma_rels:
        images = scorer.images(sweep.generator(sigma_rel), model, seed)
        row = {"sigma_rel": sigma_rel, **scorer.score(images), **scorer.checks(images)}
        rows.append(row)
        print(f"  {label} seed {seed}: post-hoc EMA sigma_rel {sigma_rel:.3f}  FD {row['fd']:7.2f}  recall {row['recall']:.3f}", flush=True)
        if row["fd"] < best_fd:
            best_fd, best_images = row["fd"], images
    return rows, best_images


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
        posthoc = [c["posthoc"] for c in by_seed.values() if "posthoc" in c]
        out[name] = {
            **({"posthoc": summarise_posthoc(posthoc)} if len(posthoc) == len(by_seed) else {}),
            "points": rows,
            "min_class_fraction": min(c["min_class_fraction"] for c in checks),
            "nyquist_ratio": statistics.fmean(c["nyquist_ratio"] for c in checks),
            "nyquist_ratio_range": [min(c["nyquist_ratio"] for c in checks), max(c["nyquist_ratio"] for c in checks)],
            "cpu_share": [c["cpu_share"] for c in by_seed.values()],
        }
    return out


def summarise_posthoc(by_seed: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """Per sigma_rel: mean and std over seeds; and the sigma_rel of the lowest mean FD."""
    rows = []
    for i, first in enumerate(by_seed[0]):
        row: dict[str, float] = {"sigma_rel": first["sigma_rel"]}
        for key in ("fd", "kid", "precision", "recall", "min_class_fraction"):
            values = [seed_rows[i][key] for seed_rows in by_seed]
            row[key] = statistics.fmean(values)
            row[key + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(row)
    return {"sigma_rels": rows, "best_sigma_rel": min(rows, key=lambda r: r["fd"])["sigma_rel"]}


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
        # an AVX2-only CPU is reproduced with these two (docs/benchmarks.md): record whether they were set
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "isa_env": {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA") if k in os.environ},
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
    p.add_argument("--sigma-rel", default="0.03,0.05,0.07,0.10,0.15", help="post-hoc EMA: sigma_rels scored after runs that track it")
    p.add_argument("--tag", default="cpu", help="device tag in the file names, e.g. cpu-xeon-2c")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = p.parse_args()

    specs = dict(r.split("=", 1) if "=" in r else (r, r) for r in args.run)
    seeds = [int(s) for s in args.seeds.split(",")]
    sigma_rels = parse_sigma_rels(args.sigma_rel)
    scorer = Scorer(args.samples)
    curves: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in specs}
    loads: list[dict[str, Any]] = []
    for seed in seeds:
        for name, spec in specs.items():
            before, waited = wait_quiet(args.quiet_below, args.max_wait)
            print(f"{name} seed {seed}: load {before:.2f} after waiting {waited} s", flush=True)
            runner = tutorial_runner(seed) if spec == "tutorial" else fastgan_runner(spec, seed)
            curves[name][seed] = train_curve(runner, scorer, args.seconds, args.every, seed, name, sigma_rels)
            runner.close()
            loads.append({"run": name, "seed": seed, "load_before": before, "waited_s": waited, "load_after": load1()})

    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"time-to-quality_{args.tag}_{time.strftime('%Y-%m-%d')}"
    for name, by_seed in curves.items():
        first = by_seed[seeds[0]]["final_images"]
        save_png(first, 8, args.out / f"{stem}_{name}.png")
        if "posthoc_images" in by_seed[seeds[0]]:
            save_png(by_seed[seeds[0]]["posthoc_images"], 8, args.out / f"{stem}_{name}_posthoc-best.png")
        for c in by_seed.values():
            c.pop("final_images")
            c.pop("posthoc_images", None)
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
        if "posthoc" in s:
            best = next(r for r in s["posthoc"]["sigma_rels"] if r["sigma_rel"] == s["posthoc"]["best_sigma_rel"])
            print(f"{'':>12}  post-hoc EMA best sigma_rel {best['sigma_rel']:.3f}: FD {best['fd']:.2f} ± {best['fd_std']:.2f}, "
                  f"recall {best['recall']:.3f}, min class {best['min_class_fraction']:.3f}")  # fmt: skip
    print(f"wrote {args.out / stem}.json and .png")


if __name__ == "__main__":
    main()
