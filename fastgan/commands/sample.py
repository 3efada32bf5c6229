"""`fastgan sample`: images from the EMA generator of a run, a checkpoint or a safetensors file
(fastgan.run.generator), as a PNG grid or a uint8 .npy array; or latent walks with --interpolate
(fastgan.sampling.interpolation)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from fastgan import files
from fastgan.errors import UsageError
from fastgan.sampling.walks import check_truncation


def check_out(out: Path) -> None:
    if out.suffix not in (".png", ".npy"):
        raise UsageError(f"--out {out}: the file must end in .png (a grid) or .npy (a uint8 array)")


def write_images(images: torch.Tensor, row: int, out: Path) -> None:
    """Beside `out`, then renamed over it (fastgan.files): killed at any moment, `out` stays whole."""
    from fastgan.sampling.grid import save_png

    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".png":
        save_png(images, row, out)
    else:
        with files.replacing(out) as f:
            np.save(f, images.cpu().numpy())


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_sample(path: Path, n: int, out: Path, seed: int, truncation: float = 1.0) -> None:
    check_truncation(truncation)
    check_out(out)
    from fastgan.run.generator import load_generator
    from fastgan.sampling.grid import generate_uint8, sample_latents

    cfg, G, where = load_generator(path)
    z, labels, row = sample_latents(cfg.model, n, seed, truncation)
    write_images(generate_uint8(G.to(device()), z.to(device()), labels.to(device())), row, out)
    print(f"fastgan: wrote {n} samples of {where} to {out}", file=sys.stderr)


def check_interpolation_args(rows: int, steps: int, truncation: float, out: Path) -> None:
    """Usage errors for the options alone, before any model is loaded."""
    if rows < 1:
        raise UsageError(f"--interpolate {rows}: give the number of rows, 1 or more")
    if steps < 2:
        raise UsageError(f"--steps {steps}: a walk needs at least 2 steps (its two ends)")
    check_truncation(truncation)
    check_out(out)


def run_interpolation(path: Path, rows: int, steps: int, out: Path, seed: int, between_classes: bool, truncation: float) -> None:
    check_interpolation_args(rows, steps, truncation, out)
    from fastgan.run.generator import load_generator
    from fastgan.sampling.interpolation import interpolation_images

    cfg, G, where = load_generator(path)
    if between_classes and not cfg.model.conditional:
        raise UsageError(f"--between-classes: {where} is unconditional (model.conditional = false); it has no classes to walk between")
    images = interpolation_images(G.to(device()), cfg.model, rows, steps, seed, between_classes, truncation, device())
    write_images(images, steps, out)
    what = "between classes" if between_classes else "between latents"
    print(f"fastgan: wrote {rows} walks of {steps} steps {what} from {where} to {out}", file=sys.stderr)
