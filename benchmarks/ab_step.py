"""Interleaved A/B of training-step variants: each variant's trainer is built once, then windows
of steps run in turn (A, B, C, A, B, C, ...), and each variant's best window is kept, so a load
that comes and goes hurts every variant alike. Images/s of the real step (the trainer `fastgan
train` builds), on the device-resident dataset.

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/ab_step.py configs/mnist-dcgan.toml \
        '{"tensor": [], "channels_last": ["train.channels_last=true"]}' --steps 8 --windows 8
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("config", type=Path)
    p.add_argument("variants", help='JSON: {"name": ["section.key=value", ...], ...}')
    p.add_argument("--set", dest="overrides", action="append", default=["data.source=fashion-mnist", "data.backend=tensor"])
    p.add_argument("--steps", type=int, default=8, help="steps per window")
    p.add_argument("--windows", type=int, default=8, help="windows per variant")
    args = p.parse_args()

    from fastgan.config import load_config
    from fastgan.data.sources import open_source
    from fastgan.hardware import cpu_info
    from fastgan.train.build import build_trainer
    from fastgan.train.setup import make_accelerator

    trainers = {}
    for name, extra in json.loads(args.variants).items():
        cfg = load_config(args.config, (*args.overrides, *extra))
        trainer = build_trainer(cfg, make_accelerator(cfg), open_source(cfg.data, cfg.model.channels, cfg.model.resolution))
        data = iter(trainer.data)
        for _ in range(3):  # warm-up
            trainer.train_step(data)
        trainers[name] = (trainer, data)
    best = dict.fromkeys(trainers, 0.0)
    for _ in range(args.windows):
        for name, (trainer, data) in trainers.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                trainer.train_step(data)
            rate = args.steps * trainer.cfg.train.batch_size * trainer.cfg.tricks.d_steps / (time.perf_counter() - start)
            best[name] = max(best[name], rate)
    cpu = cpu_info()
    print(json.dumps({
        "cpu": cpu["model"], "bf16_units": cpu["bf16_units"], "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
        "variants": json.loads(args.variants), "best_images_per_s": {k: round(v, 1) for k, v in best.items()},
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
