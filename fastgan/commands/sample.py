"""`fastgan sample`: images from the EMA generator of a run, a checkpoint or a safetensors file
(fastgan.run.generator), in the forms users of StyleGAN2-ADA's gen_images.py and
lightweight-gan expect; or latent walks with --interpolate (fastgan.sampling.interpolation).

    --out FILE.png   a grid to look at (--grid RxC picks its shape)
    --out FILE.npy   a uint8 array [N, C, H, W]
    --out DIR/       one PNG per image, named by seed and index (a name without a suffix too)
    --out FILE.gif   walks only: an animation, one frame per step

Everything about --out is checked before the generator is loaded: its form, its place, and
whether a picture would be too big to look at. Arrays and folders stream: they are generated and
written a chunk at a time (fastgan.sampling.grid.sample_chunks), after a check that the disk can
hold them, so memory holds the model and one chunk, whatever --n is. Every file is written
beside its destination and renamed into place, a folder as a whole (fastgan.files).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fastgan import files
from fastgan.config import Config
from fastgan.errors import UsageError
from fastgan.progress import Progress
from fastgan.sampling.walks import check_truncation

# A picture (.png grid, .gif walk) is for a person to look at: 64 x 64 images. More belong in an array or a folder.
MAX_GRID_IMAGES = 4096
# Walks are made whole in memory (each row from its own two ends): 64 rows of 1,024 steps.
MAX_WALK_IMAGES = 65_536
GIF_FRAME_MS = 100
FORMS = "FILE.png (a grid), FILE.npy (a uint8 array), DIR/ (one PNG per image), or FILE.gif (walks, with --interpolate)"


@dataclass(frozen=True)
class Out:
    path: Path
    kind: str  # "png", "npy", "gif" or "folder"


def parse_out(text: str) -> Out:
    """--out as written: a trailing / (or no suffix at all) means a folder of PNGs."""
    path = Path(text)
    if text.endswith("/") or not path.suffix:
        return Out(path, "folder")
    kind = path.suffix.lower().lstrip(".")
    if kind not in ("png", "npy", "gif"):
        raise UsageError(f"--out {text}: give {FORMS}")
    return Out(path, kind)


def parse_grid(text: str) -> tuple[int, int]:
    """--grid 4x8 -> (4 rows, 8 columns)."""
    rows, sep, cols = text.lower().partition("x")
    if not (sep and rows.isdigit() and cols.isdigit() and int(rows) > 0 and int(cols) > 0):
        raise UsageError(f"--grid {text}: give rows x columns, e.g. --grid 4x8")
    return int(rows), int(cols)


def check_out(out: Out, num_images: int) -> None:
    """Usage errors for --out alone (and the number of images it would hold), before any model is loaded."""
    if out.kind == "folder":
        files.check_folder_out(out.path, "--out")
        return
    files.check_file_out(out.path, "--out", f"samples.{out.kind}")
    if out.kind in ("png", "gif") and num_images > MAX_GRID_IMAGES:
        raise UsageError(
            f"--out {out.path}: a picture of {num_images:,} images is too big to look at (at most {MAX_GRID_IMAGES:,}, 64 x 64); "
            f"write them as a uint8 array, --out {out.path.with_suffix('.npy')}, or one PNG each, --out {out.path.with_suffix('')}/"
        )


def image_bytes(num_images: int, channels: int, resolution: int, kind: str) -> int:
    """About what `num_images` take on disk: an array's exact size, or a PNG each (each at least a 4 KiB block)."""
    raw = channels * resolution * resolution
    if kind == "npy":
        return num_images * raw + 128  # the header is 128 bytes at most for 4 dimensions
    return num_images * 4096 * math.ceil((raw + resolution + 256) / 4096)  # a filter byte per row, headers


def write_npy(out: Path, shape: tuple[int, int, int, int], chunks: Iterable[torch.Tensor], progress: Progress) -> None:
    """A uint8 .npy array of `shape`, written a chunk at a time beside `out`, then renamed over it."""
    with files.replacing(out) as f:
        files.write_npy_header(f, shape)
        for images in chunks:
            f.write(images.numpy().tobytes())
            progress.advance(len(images))


def write_folder(out: Path, names: Iterable[str], chunks: Iterable[torch.Tensor], progress: Progress) -> None:
    """One PNG per image at its own resolution, made in a folder beside `out` that is renamed to it whole."""
    from fastgan.sampling.grid import to_pil

    name = iter(names)
    with files.replacing_folder(out) as tmp:
        for images in chunks:
            for image in images.permute(0, 2, 3, 1).numpy():
                to_pil(image).save(tmp / next(name), format="PNG")
            progress.advance(len(images))


def write_gif(out: Path, frames: list[np.ndarray]) -> None:
    """An animation that loops, one uint8 [H, W, C] frame per step, written beside `out` and renamed."""
    from fastgan.sampling.grid import to_pil

    pictures = [to_pil(f) for f in frames]
    with files.replacing(out) as f:
        pictures[0].save(f, format="GIF", save_all=True, append_images=pictures[1:], duration=GIF_FRAME_MS, loop=0)


def sample_names(seed: int, n: int) -> Iterator[str]:
    """seed0000-000000.png, ...: StyleGAN2-ADA names by seed; one seed gives many images here, so its index follows."""
    width = max(6, len(str(n - 1)))
    return (f"seed{seed:04d}-{i:0{width}d}.png" for i in range(n))


def walk_names(seed: int, rows: int, steps: int) -> Iterator[str]:
    rw, sw = max(3, len(str(rows - 1))), max(2, len(str(steps - 1)))
    return (f"seed{seed:04d}-walk{r:0{rw}d}-step{k:0{sw}d}.png" for r in range(rows) for k in range(steps))


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_source(path: Path, sigma_rel: float | None) -> tuple[Config, torch.nn.Module, str]:
    from fastgan.run.posthoc_ema import load_g_ema

    return load_g_ema(path, sigma_rel, device())


def run_sample(
    path: Path, n: int | None, out_text: str, seed: int, truncation: float = 1.0, grid: str | None = None, sigma_rel: float | None = None
) -> None:
    check_truncation(truncation)
    out = parse_out(out_text)
    shape = parse_grid(grid) if grid is not None else None
    if out.kind == "gif":
        raise UsageError(f"--out {out.path}: a GIF is an animated walk; add --interpolate N, or give {FORMS}")
    if shape is not None and out.kind != "png":
        raise UsageError(f"--grid {grid} shapes a .png grid; --out {out.path} is {'a folder' if out.kind == 'folder' else 'an array'}")
    if shape is not None and n is not None and n > shape[0] * shape[1]:
        raise UsageError(f"--grid {grid} holds {shape[0] * shape[1]} images, fewer than --n {n}; give a bigger grid or drop --n")
    n = n if n is not None else (shape[0] * shape[1] if shape is not None else 64)
    check_out(out, shape[0] * shape[1] if shape is not None else n)
    if sigma_rel is not None:
        from fastgan.run.posthoc_ema import check_sigma_rel

        check_sigma_rel(sigma_rel)
    from fastgan.sampling.grid import grid_row, sample_chunks, save_png

    cfg, G, where = load_source(path, sigma_rel)
    m = cfg.model
    if out.kind != "png":
        files.check_free_space(out.path, image_bytes(n, m.channels, m.resolution, out.kind), "--out")
    chunks = sample_chunks(G.to(device()), m, n, seed, truncation, device())
    out.path.parent.mkdir(parents=True, exist_ok=True)
    with Progress("sample", total=n) as progress:
        if out.kind == "npy":
            write_npy(out.path, (n, m.channels, m.resolution, m.resolution), chunks, progress)
        elif out.kind == "folder":
            write_folder(out.path, sample_names(seed, n), chunks, progress)
        else:
            rows, cols = shape if shape is not None else (None, grid_row(m, n))
            save_png(torch.cat(list(chunks)), cols, out.path, rows=rows)
    form = {"png": "a grid", "npy": "an array", "folder": "one PNG each"}[out.kind]
    print(f"fastgan: wrote {n} samples of {where} to {out.path} ({form}, truncation psi = {truncation:g})", file=sys.stderr)


def check_interpolation_args(rows: int, steps: int, truncation: float, out: Out) -> None:
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


def run_interpolation(
    path: Path, rows: int, steps: int, out_text: str, seed: int, between_classes: bool, truncation: float, sigma_rel: float | None = None
) -> None:
    out = parse_out(out_text)
    check_interpolation_args(rows, steps, truncation, out)
    from fastgan.sampling.grid import display_grid, save_png
    from fastgan.sampling.interpolation import interpolation_images

    cfg, G, where = load_source(path, sigma_rel)
    m = cfg.model
    if between_classes and not m.conditional:
        raise UsageError(f"--between-classes: {where} is unconditional (model.conditional = false); it has no classes to walk between")
    if out.kind == "folder":
        files.check_free_space(out.path, image_bytes(rows * steps, m.channels, m.resolution, "png"), "--out")
    images = interpolation_images(G.to(device()), m, rows, steps, seed, between_classes, truncation, device()).cpu()
    out.path.parent.mkdir(parents=True, exist_ok=True)
    if out.kind == "png":
        save_png(images, steps, out.path)
    elif out.kind == "npy":
        with files.replacing(out.path) as f:
            np.save(f, images.numpy())
    elif out.kind == "folder":
        with Progress("sample", total=len(images)) as progress:
            write_folder(out.path, walk_names(seed, rows, steps), [images], progress)
    else:  # frame k: step k of every walk, side by side as a grid
        per_step = images.view(rows, steps, *images.shape[1:]).transpose(0, 1)
        write_gif(out.path, [display_grid(frame, math.ceil(math.sqrt(rows))) for frame in per_step])
    what = "between classes" if between_classes else "between latents"
    form = f"{steps} frames" if out.kind == "gif" else {"png": "a row each", "npy": "an array", "folder": "one PNG each"}[out.kind]
    print(
        f"fastgan: wrote {rows} walks of {steps} steps {what} from {where} to {out.path} ({form}, truncation psi = {truncation:g})",
        file=sys.stderr,
    )
