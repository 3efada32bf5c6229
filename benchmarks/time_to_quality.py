"""Time to quality: the eager baseline against the fastest configuration, same wall-clock budget.

Each configuration trains through the real fastgan step for `--seconds` of training time; every
`--every` seconds the clock stops, G_ema's Fréchet distance (fastgan's shipped Fashion-MNIST
feature net, 5,000 samples against the test split) is measured, and the clock resumes. Output: a
JSON of (seconds, images seen, FD) per configuration and a plot of FD against seconds.

    python benchmarks/time_to_quality.py configs/fashion-dcgan.toml --seconds 120 --every 20 \
        --fast 'data.backend=tensor' --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from fastgan.config import load_config
from fastgan.data.sources import open_source
from fastgan.engine.build import build_trainer, make_accelerator
from fastgan.metrics import compute_metrics
from fastgan.metrics.cache import real_features
from fastgan.metrics.evaluate import eval_latents, feature_cache_dir, generated_features, real_sets
from fastgan.metrics.feature_net import load_feature_net

BASELINE = ("data.backend=torchvision", "train.precision=no", "train.compile=off", "train.channels_last=false")


def curve(config: Path, overrides: tuple[str, ...], seconds: float, every: float, samples: int) -> list[dict[str, float]]:
    cfg = load_config(config, overrides)
    acc = make_accelerator(cfg)
    trainer = build_trainer(cfg, acc, open_source(cfg.data, cfg.model.channels, cfg.model.resolution))
    device = acc.device
    net = load_feature_net(device)
    real, _ = real_sets(cfg.data, cfg.model, "test", samples, floor=False)
    real_feat = real_features(real.source, real.split, real.images, net, device, feature_cache_dir())
    latents = eval_latents(samples, cfg.model, cfg.train.seed + 1_000_003, device)

    def fd() -> float:
        return compute_metrics(["fd"], real_feat, generated_features(trainer.ready_G_ema(), net, *latents))["fd"]

    points = [{"seconds": 0.0, "nimg": 0, "fd": fd()}]
    data, trained, next_eval = iter(trainer.data), 0.0, every
    while trained < seconds:
        start = time.perf_counter()
        while trained + (time.perf_counter() - start) < next_eval:
            trainer.train_step(data)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        trained += time.perf_counter() - start
        points.append({"seconds": round(trained, 2), "nimg": trainer.cur_nimg, "fd": fd()})  # the clock is stopped here
        print(f"  {' '.join(overrides) or 'preset'}: {trained:6.1f} s  {trainer.cur_nimg:>8,} img  FD {points[-1]['fd']:.2f}")
        next_eval += every
    return points


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config", type=Path)
    p.add_argument("--seconds", type=float, default=120.0, help="training time per configuration")
    p.add_argument("--every", type=float, default=20.0, help="seconds of training between FD measurements")
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--fast", action="append", default=[], help="override(s) of the fastest configuration (repeatable)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = p.parse_args()

    fast = tuple(BASELINE) + tuple(args.fast)
    runs = {"eager baseline": curve(args.config, BASELINE, args.seconds, args.every, args.samples),
            "fastest": curve(args.config, fast, args.seconds, args.every, args.samples)}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"time_to_quality_{args.config.stem}_{time.strftime('%Y-%m-%d')}"
    meta = {"config": str(args.config), "baseline": BASELINE, "fastest": fast, "torch": torch.__version__,
            "device": "cuda" if torch.cuda.is_available() else "cpu", "date": time.strftime("%Y-%m-%d"), "runs": runs}  # fmt: skip
    (args.out / f"{stem}.json").write_text(json.dumps(meta, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in runs.items():
        ax.plot([q["seconds"] for q in points], [q["fd"] for q in points], marker="o", label=name)
    ax.set_xlabel("training seconds (eval excluded)")
    ax.set_ylabel("FD (fastgan Fashion-MNIST features, lower is better)")
    ax.set_yscale("log")
    ax.set_title(f"time to quality: {args.config.stem}", fontsize=9)
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / f"{stem}.png", dpi=120)
    print(f"wrote {args.out / stem}.json and .png")


if __name__ == "__main__":
    main()
