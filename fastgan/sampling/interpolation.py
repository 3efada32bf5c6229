"""Latent walks through a generator: N rows of K images, each row a walk between two latents.

Row i of a conditional model keeps class i mod num_classes; with `between_classes` row i keeps
one z and walks from class i to class i+1 (mod num_classes) instead, through the blended class
embeddings. The walks themselves are pure functions in fastgan.sampling.walks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from fastgan.config import ModelConfig
from fastgan.latents import draw_latents
from fastgan.models.conditioning import LatentInput
from fastgan.sampling.grid import generate_uint8
from fastgan.sampling.walks import class_walk, truncate, walk


def walk_latents(model: ModelConfig, rows: int, steps: int, seed: int, between_classes: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """z [rows * steps, Z] and the class at each end of each row [rows, 2].
    Unconditional rows are labelled 0. The endpoints are the seed's first 2 * rows plain draws:
    row i walks from draw 2i to draw 2i+1 (between classes: stays at draw 2i)."""
    dist = model.latent
    ends = draw_latents(dist, 2 * rows, model.z_dim, generator=torch.Generator().manual_seed(seed)).view(rows, 2, model.z_dim)
    z = ends[:, :1].expand(rows, steps, model.z_dim) if between_classes else walk(dist, ends[:, 0], ends[:, 1], steps)
    first = torch.arange(rows) % model.num_classes if model.conditional else torch.zeros(rows, dtype=torch.long)
    second = (first + 1) % model.num_classes if between_classes else first
    return z.reshape(rows * steps, model.z_dim), torch.stack([first, second], dim=1)


def find_latent_input(G: nn.Module) -> LatentInput:
    found = next((m for m in G.modules() if isinstance(m, LatentInput)), None)
    assert found is not None, "every fastgan generator takes z through a LatentInput"
    return found


@contextmanager
def blended_classes(G: nn.Module, embeddings: torch.Tensor) -> Iterator[torch.Tensor]:
    """G with its class embedding table swapped for `embeddings` [M, E]; yields the labels that
    pick them (0..M-1). The embedding is a table lookup, so a blend of two classes is one row."""
    latent = find_latent_input(G)
    assert latent.embed is not None, "only conditional generators have class embeddings"
    original = latent.embed
    latent.embed = nn.Embedding.from_pretrained(embeddings, freeze=True)
    try:
        yield torch.arange(len(embeddings), device=embeddings.device)
    finally:
        latent.embed = original


def interpolation_images(
    G: nn.Module, model: ModelConfig, rows: int, steps: int, seed: int, between_classes: bool, truncation: float, device: torch.device
) -> torch.Tensor:
    """uint8 [rows * steps, C, H, W], row-major: row i is walk i."""
    z, classes = walk_latents(model, rows, steps, seed, between_classes)
    z = truncate(z, truncation).to(device)
    if not between_classes:
        return generate_uint8(G, z, classes[:, 0].repeat_interleave(steps).to(device))
    table = find_latent_input(G).embed
    assert table is not None
    with torch.no_grad():
        ends = table(classes.to(device))  # [rows, 2, E]
    blends = class_walk(ends[:, 0], ends[:, 1], steps).reshape(rows * steps, -1)
    with blended_classes(G, blends) as labels:
        return generate_uint8(G, z, labels)
