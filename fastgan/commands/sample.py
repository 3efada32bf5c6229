"""`fastgan sample`: images from the EMA generator of a run, a checkpoint or a safetensors file
(fastgan.run.generator), as a PNG grid or a uint8 .npy array; or latent walks with --interpolate
(fastgan.sampling.interpolation).

Everything about `--out` is checked before the generator is loaded: its form, its place, and
whether a grid would be too big to look at. A .npy array streams: it is generated and written a
chunk at a time (fastgan.sampling.grid.sample_chunks), after a check that the disk can hold it,
so memory holds the model and one chunk, whatever --n is. Every file is written beside its
destination and renamed into place (fastgan.files).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch

from fastgan import files
from fastgan.errors import UsageError
from fastgan.progress import Progress
from fastgan.sampling.walks import check_truncation

# A grid is for a person to look at: 64 x 64 images. More belong in an array.
MAX_GRID_IMAGES = 4096
# Walks are made whole in memory (each row from its own two ends): 64 rows of 1,024 steps.
MAX_WALK_IMAGES = 65_536


def check_out(out: Path, num_images: int) -> None:
    """Usage errors for --out alone (and the number of images it would hold), before any model is loaded."""
    if out.suffix not in (".png", ".npy"):
        raise UsageError(f"--out {out}: the file must end in .png (a grid) or .npy (a uint8 array)")
    files.check_file_out(out, "--out", "samples.png")
    if out.suffix == ".png" and num_images > MAX_GRID_IMAGES:
        raise UsageError(
            f"--out {out}: a PNG grid of {num_images:,} images is too big to look at (at most {MAX_GRID_IMAGES:,}, 64 x 64); "
            f"write them as a uint8 array instead: --out {out.with_suffix('.npy')}"
        )


def npy_bytes(num_images: int, channels: int, resolution: int) -> int:
    return num_images * channels * resolution * resolution + 128  # the header is 128 bytes at most for 4 dimensions


def write_npy(out: Path, shape: tuple[int, int, int, int], chunks: Iterable[torch.Tensor], progress: Progress) -> None:
    """A uint8 .npy array of `shape`, written a chunk at a time beside `out`, then renamed over it."""
    with files.replacing(out) as f:
        files.write_npy_header(f, shape)
        for images in chunks:
            f.write(images.numpy().tobytes())
            progress.advance(len(images))


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
    check_out(out, n)
    from fastgan.run.generator import load_generator
    from fastgan.sampling.grid import grid_row, sample_chunks, save_png

    cfg, G, where = load_generator(path)
    m = cfg.model
    if out.suffix == ".npy":
        files.check_free_space(out, npy_bytes(n, m.channels, m.resolution), "--out")
    chunks = sample_chunks(G.to(device()), m, n, seed, truncation, device())
    out.parent.mkdir(parents=True, exist_ok=True)
    with Progress("sample", total=n) as progress:
        if out.suffix == ".npy":
            write_npy(out, (n, m.channels, m.resolution, m.resolution), chunks, progress)
        else:
            save_png(torch.cat(list(chunks)), grid_row(m, n), out)
    print(f"fastgan: wrote {n} samples of {where} to {out}", file=sys.stderr)


def check_interpolation_args(rows: int, steps: int, truncation: float, out: Path) -> None:
    """Usage errors for the options alone, before any model is loaded."""
    if rows < 1:
        raise UsageError(f"--interpolate {rows}: give the number of rows, 1 or more")
    if steps < 2:
        raise UsageError(f"--steps {steps}: a walk needs at least 2 steps (its two ends)")
    check_truncation(truncation)
    check_out(out, rows * steps)
    if rows * steps > MAX_WALK_IMAGES:
        raise UsageError(
            f"--interpolate {rows} --steps {steps}: {rows * steps:,} images; walks are made in memory, at most {MAX_WALK_IMAGES:,} "
            "images per command: run it several times with other --seed values"
        )


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
