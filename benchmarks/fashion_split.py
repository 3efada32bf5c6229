"""Fine-tuning demo on Fashion-MNIST: does a G trained on classes 0-4 help on classes 5-9?

1. Writes the class splits as npy: sources (train 0-4, train 5-9, and test 5-9 as the reference).
2. Trains a source run on classes 0-4 (--source-images).
3. On classes 5-9, for the same --target-images each: from scratch; fine-tuned with
   `fastgan train --init SOURCE`; and fine-tuned with FreezeD (`tricks.freeze_d = 1`).
4. `fastgan eval --metrics fd` of each G_ema against held-out test images of classes 5-9 (a copy
   of its generator beside a config.toml whose data.source is the test 5-9 array; a source
   without splits is scored against one half of it, with the other half as the floor).

    nice -n 10 python benchmarks/fashion_split.py --out /tmp/fashion-split \\
        --result benchmarks/results/fashion-split_<device>_<date>.json

Small by default (the MLP GAN of mnist-mlp, 8k + 3 x 2k images: minutes on 2 busy CPU cores;
`--preset fashion-dcgan` and more images for a closer look). The JSON holds the FDs, the
floor, every command, wall seconds, the CPU flags and the date; each run's last grid is copied
beside it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent


def write_splits(folder: Path) -> dict[str, Path]:
    """Fashion-MNIST as fastgan reads it, cut by class into npy sources (labels shifted to 0-4)."""
    from fastgan.config import DataConfig
    from fastgan.data.sources import open_source

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split in ("train", "test"):
        src = open_source(DataConfig(source="fashion-mnist", split=split, download=False), 1, 28)
        images, labels = src.arrays()
        for name, lo in (("0-4", 0), ("5-9", 5)):
            keep = (labels >= lo) & (labels < lo + 5)
            path = folder / f"{split}-{name}.npy"
            np.save(path, images[keep])
            np.save(path.with_suffix(".labels.npy"), (labels[keep] - lo).astype(np.int64))
            out[f"{split}-{name}"] = path
    return out


def fastgan(*args: str | Path) -> tuple[list[str], float]:
    cmd = [sys.executable, "-m", "fastgan", *map(str, args)]
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return ["python", *cmd[1:]], time.monotonic() - start  # as a user types it (no local interpreter path)


def train(out: Path, source: Path, images: int, *extra: str, preset: str, batch: int) -> tuple[list[str], float]:
    every = max(images // 4 // batch * batch, batch)
    sets = [
        f"data.source=npy:{source}", f"train.batch_size={batch}", f"train.total_images={images}",
        f"train.log_every={every}", f"train.sample_every={images}", f"train.checkpoint_every={images}", "train.num_samples=64",
    ]  # fmt: skip
    return fastgan("train", preset, "--out", out, *(a for s in sets for a in ("--set", s)), *extra)


def fd_against(run: Path, reference: Path, n: int) -> tuple[dict, list[str], float]:
    """FD of the run's G_ema against `reference` (an npy: source), through `fastgan eval`."""
    from dataclasses import replace

    from fastgan.config import load_config, to_toml

    folder = run.parent / f"{run.name}-eval"
    folder.mkdir(exist_ok=True)
    shutil.copy(run / "generator.safetensors", folder / "generator.safetensors")
    cfg = load_config(run / "config.toml")
    cfg = replace(cfg, data=replace(cfg.data, source=f"npy:{reference}"))
    (folder / "config.toml").write_text(to_toml(cfg))
    cmd, seconds = fastgan("eval", folder / "generator.safetensors", "--metrics", "fd", "--n", str(n))
    (written,) = folder.glob("eval*.json")  # eval-n2000.json: fastgan eval names the file by what differs from its defaults
    return json.loads(written.read_text()), cmd, seconds


def cpu_flags() -> dict[str, str]:
    text = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    keep = ("Model name", "CPU(s)", "Flags")
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if k.strip() in keep}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="Working folder (runs and arrays)")
    p.add_argument("--result", type=Path, required=True, help="The result JSON; grids are copied beside it")
    p.add_argument("--preset", default="mnist-mlp", help="Any preset; data.source is set to the class splits")
    p.add_argument("--source-images", type=int, default=8_192)
    p.add_argument("--target-images", type=int, default=2_048)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--freeze-d", type=int, default=1)
    p.add_argument("--eval-n", type=int, default=2_000)
    a = p.parse_args()
    if a.out.exists():
        sys.exit(f"--out {a.out} exists; give a new folder")
    arrays = write_splits(a.out / "arrays")
    size: dict[str, Any] = dict(preset=a.preset, batch=a.batch)
    runs: dict[str, dict] = {}
    source = a.out / "source-0-4"
    cmd, seconds = train(source, arrays["train-0-4"], a.source_images, **size)
    runs["source (0-4)"] = {"run": source, "command": cmd, "train_s": seconds, "images": a.source_images}
    target = arrays["train-5-9"]
    for name, folder, extra in (
        ("scratch (5-9)", "scratch-5-9", ()),
        ("init (5-9)", "init-5-9", ("--init", str(source))),
        (f"init + freeze_d={a.freeze_d} (5-9)", "init-freeze-d-5-9", ("--init", str(source), "--set", f"tricks.freeze_d={a.freeze_d}")),
    ):
        run = a.out / folder
        cmd, seconds = train(run, target, a.target_images, *extra, **size)
        runs[name] = {"run": run, "command": cmd, "train_s": seconds, "images": a.target_images}
    a.result.parent.mkdir(parents=True, exist_ok=True)
    for r in runs.values():
        scores, cmd, seconds = fd_against(r["run"], arrays["test-5-9"], a.eval_n)
        r.update(
            fd=scores["metrics"]["fd"], floor_fd=scores["floor"]["fd"], reference=scores["reference"], eval_command=cmd, eval_s=seconds
        )
        grid = a.result.with_name(f"{a.result.stem}_{r['run'].name}.png")
        shutil.copy(r["run"] / "samples" / "latest.png", grid)
        r["grid"], r["run"] = grid.name, str(r["run"])
    result = {
        "what": "FD (shipped Fashion-MNIST CNN features) of G_ema against test images of classes 5-9",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {k: v for k, v in vars(a).items() if k not in ("out", "result")},
        "python": platform.python_version(),
        "cpu": cpu_flags(),
        "runs": runs,
    }
    a.result.write_text(json.dumps(result, indent=2, default=str) + "\n")
    for name, r in runs.items():
        print(f"{name:28s} FD {r['fd']:8.2f}  (floor {r['floor_fd']:.2f}; {r['images']:,} images, {r['train_s']:.0f} s)")
    print(f"wrote {a.result}")


if __name__ == "__main__":
    main()
