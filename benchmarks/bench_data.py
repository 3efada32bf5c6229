"""Loader-only throughput of each data backend: images/s arriving on the device, no model attached.

    python benchmarks/bench_data.py                  # Fashion-MNIST 28x28 + 2,000 generated 64x64 JPEGs
    python benchmarks/bench_data.py --seconds 1 --num-jpegs 64 --batch-size 32   # smoke run

Each (dataset, backend) pair is built, warmed up, then timed for --seconds of wall time. On a GPU
the clock stops after a CUDA sync, so every counted image has landed on the device. `setup_s` is
construction plus warm-up: the tensor backend decodes a whole folder there, once. The folder's
bad-file scan (a full PIL decode, shared by all backends) is timed separately as `scan_s`.
Prints a table and writes a JSON report with hardware, versions and settings to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastgan.commands.info import package_version
from fastgan.config import DataConfig
from fastgan.data.backends import make_batches
from fastgan.data.contract import StreamSpec
from fastgan.data.sources import Source, open_source


def write_jpegs(root: Path, n: int, size: int) -> None:
    """`n` JPEGs of smooth colour fields plus noise: they compress like photos, not like flat colour."""
    from PIL import Image

    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 1, size, dtype=np.float32)
    for i in range(n):
        base = rng.uniform(0, 255, 3).astype(np.float32) * ramp[:, None, None] + rng.uniform(0, 64, 3).astype(np.float32)
        image = np.clip(base.repeat(size, 1) + rng.normal(0, 12, (size, size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(root / f"{i:05d}.jpg", quality=90)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # the clock must count finished copies, not queued ones


def measure(backend: str, source: Source, spec: StreamSpec, seconds: float, warmup: int) -> dict[str, Any]:
    start = time.perf_counter()
    batches = iter(make_batches(backend, source, spec))
    for _ in range(warmup):
        next(batches)
    sync(spec.device)
    setup_s = time.perf_counter() - start
    num_batches, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(batches)
        num_batches += 1
    sync(spec.device)
    elapsed = time.perf_counter() - start
    return {"images_per_s": num_batches * spec.batch_size / elapsed, "batches": num_batches, "seconds": elapsed, "setup_s": setup_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensor", "torchvision", "dali"])
    parser.add_argument("--datasets", nargs="+", default=["fashion-mnist", "jpeg-folder"], choices=["fashion-mnist", "jpeg-folder"])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seconds", type=float, default=10.0, help="timed wall time per (dataset, backend)")
    parser.add_argument("--warmup", type=int, default=5, help="batches before the clock starts")
    parser.add_argument("--num-jpegs", type=int, default=2000)
    parser.add_argument("--jpeg-size", type=int, default=64)
    parser.add_argument("--num-workers", type=int, default=2, help="DataLoader workers (torchvision), CPU threads (DALI)")
    parser.add_argument("--hflip", action="store_true")
    parser.add_argument("--cpu", action="store_true", help="deliver to the CPU even if a GPU is present")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results") / f"data-{time.strftime('%Y-%m-%d')}.json")
    args = parser.parse_args()

    from rich.console import Console
    from rich.table import Table

    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    spec = StreamSpec(args.batch_size, 0, 1, seed=0, device=device, hflip=args.hflip, num_workers=args.num_workers)
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets:
            start = time.perf_counter()
            if dataset == "fashion-mnist":
                source = open_source(DataConfig(source="fashion-mnist", download=False), 1, 28)
            else:
                write_jpegs(Path(tmp), args.num_jpegs, args.jpeg_size)
                start = time.perf_counter()  # the scan, not the generation
                source = open_source(DataConfig(source=f"folder:{tmp}"), 3, args.jpeg_size)
            scan_s = time.perf_counter() - start
            for backend in args.backends:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # DALI's CPU-fallback notice: the device column says it
                    row = measure(backend, source, spec, args.seconds, args.warmup)
                results.append({"dataset": dataset, "num_images": len(source), "backend": backend, "scan_s": scan_s, **row})

    table = Table(title=f"data backends, loader only, batch {args.batch_size}, delivered to {device}")
    for column in ("dataset", "images", "backend", "images/s", "batches", "setup s", "scan s"):
        table.add_column(column, justify="left" if column in ("dataset", "backend") else "right", no_wrap=True)
    for r in results:
        table.add_row(
            r["dataset"],
            f"{r['num_images']:,}",
            r["backend"],
            f"{r['images_per_s']:,.0f}",
            str(r["batches"]),
            f"{r['setup_s']:.2f}",
            f"{r['scan_s']:.2f}",
        )
    Console().print(table)

    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "host": platform.node(),
        "cpu_count": os.cpu_count(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "versions": {p: package_version(p) for p in ("torch", "torchvision", "nvidia-dali-cuda130", "pillow", "numpy")},
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
