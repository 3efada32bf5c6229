"""Sample grids and arrays from a generator: the latents of a grid, images as uint8, the grid a
person looks at, and the PNG it is saved as."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fastgan import files
from fastgan.config import ModelConfig
from fastgan.latents import draw_latents
from fastgan.sampling.walks import truncate


def fixed_latents(
    num: int, z_dim: int, num_classes: int, conditional: bool, seed: int, device: torch.device, latent: str = "gaussian"
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """z (from the `latent` distribution), labels and the grid's row length. Conditional: one row per class, in class order."""
    g = torch.Generator().manual_seed(seed)
    if conditional:
        per_class = max(1, num // num_classes)
        labels = torch.arange(num_classes).repeat_interleave(per_class)
        row = per_class
    else:
        labels = torch.zeros(num, dtype=torch.long)
        row = math.ceil(math.sqrt(num))
    z = draw_latents(latent, len(labels), z_dim, generator=g)
    return z.to(device), labels.to(device), row


@torch.no_grad()
def generate_uint8(G: nn.Module, z: torch.Tensor, labels: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """G's images as uint8 [N, C, H, W] (from tanh's [-1, 1]), in eval mode, batched."""
    was_training = G.training
    G.eval()
    out = [G(z[i : i + batch], labels[i : i + batch]).float() for i in range(0, len(z), batch)]
    G.train(was_training)
    images = torch.cat(out)
    return ((images + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def grid(images: torch.Tensor, row: int, pad: int = 2, rows: int | None = None) -> np.ndarray:
    """uint8 [N, C, H, W] -> one uint8 image [H', W', C] with `row` images per row (and `rows` rows,
    default as many as the images fill; cells past the last image stay white)."""
    n, c, h, w = images.shape
    rows = rows or math.ceil(n / row)
    assert n <= rows * row, (n, rows, row)
    canvas = np.full((c, rows * (h + pad) + pad, row * (w + pad) + pad), 255, dtype=np.uint8)
    host = images.cpu().numpy()
    for i in range(n):
        r, col = divmod(i, row)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        canvas[:, top : top + h, left : left + w] = host[i]
    return canvas.transpose(1, 2, 0)


def display_grid(images: torch.Tensor, row: int, rows: int | None = None) -> np.ndarray:
    """The grid a person looks at, uint8 [H', W', C]: images of 32 px or less are scaled up 3x
    (nearest), so they can be seen. The PNGs, TensorBoard and the timeline all show this."""
    arr = grid(images, row, rows=rows)
    if images.shape[-1] <= 32:
        arr = arr.repeat(3, axis=0).repeat(3, axis=1)
    return arr


def to_pil(arr: np.ndarray) -> Any:
    """uint8 [H, W, C] (C = 1 or 3) as a PIL image."""
    from PIL import Image

    return Image.fromarray(arr[:, :, 0], mode="L") if arr.shape[2] == 1 else Image.fromarray(arr, mode="RGB")


def save_png(images: torch.Tensor, row: int, path: Path, then: str = files.RETRY, rows: int | None = None) -> None:
    """Save the display grid of `images` atomically (fastgan.files: a reader never sees half a file)."""
    im = to_pil(display_grid(images, row, rows))
    path.parent.mkdir(parents=True, exist_ok=True)
    with files.replacing(path, then) as f:
        im.save(f, format="PNG")


def diversity(images: torch.Tensor) -> torch.Tensor:
    """Mean per-pixel std across a batch (float, on device): near 0 when samples collapse."""
    return images.float().std(dim=0).mean()


CHUNK = 256  # images per generate call in `sample_chunks`: generate_uint8's batch, so chunks change no image


def sample_labels(model: ModelConfig, n: int, start: int, stop: int) -> torch.Tensor:
    """Labels of images start..stop-1 of `fastgan sample --n n`: a conditional model's run class by
    class (one grid row per class), an unconditional model's are all 0."""
    if model.conditional:
        return torch.arange(start, stop) // -(-n // model.num_classes)
    return torch.zeros(stop - start, dtype=torch.long)


def grid_row(model: ModelConfig, n: int) -> int:
    """Images per row of `fastgan sample`'s grid: one row per class, else as square as it gets."""
    return -(-n // model.num_classes) if model.conditional else math.ceil(math.sqrt(n))


def sample_chunks(
    G: nn.Module, model: ModelConfig, n: int, seed: int, truncation: float, device: torch.device, chunk: int = CHUNK
) -> Iterator[torch.Tensor]:
    """`fastgan sample`'s `n` images as uint8 [<= chunk, C, H, W] CPU tensors, in order, so that
    memory holds one chunk whatever `n` is. z comes from one generator seeded with `seed`, drawn
    chunk by chunk: the same latents as one draw of all `n` (CPU randn fills blocks of 16 values,
    and a chunk is a whole number of them), truncated by psi."""
    g = torch.Generator().manual_seed(seed)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        z = truncate(draw_latents(model.latent, stop - start, model.z_dim, generator=g), truncation)
        yield generate_uint8(G, z.to(device), sample_labels(model, n, start, stop).to(device)).cpu()
