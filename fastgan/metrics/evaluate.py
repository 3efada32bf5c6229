"""What `fastgan eval` and in-training eval share: where features are cached, which real images a
generator is compared with, and features of generated images.

Real sets are drawn with a fixed seed, so the same config always picks the same images and the
feature cache (`fastgan.metrics.cache`) hits from the second evaluation on.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fastgan.config import Config, DataConfig, ModelConfig
from fastgan.data.sources import open_source
from fastgan.errors import UsageError
from fastgan.latents import draw_latents
from fastgan.metrics import compute_metrics
from fastgan.metrics.cache import real_features
from fastgan.metrics.feature_net import Embedder, extract_features
from fastgan.progress import Progress
from fastgan.sampling.grid import generate_uint8
from fastgan.sampling.walks import truncate

# Sources with separate train and test splits; the others (npy:, folder:) ignore data.split.
SPLIT_SOURCES = ("mnist", "fashion-mnist", "cifar10")
KID_SUBSET_SIZE = 1000  # Bińkowski et al. 2018 and torch-fidelity's default, capped at the set size
REAL_SEED = 0  # picks the real subsets: fixed, so cached features stay valid across runs


def feature_cache_dir() -> Path:
    """$FASTGAN_CACHE, else $XDG_CACHE_HOME/fastgan/features, else ~/.cache/fastgan/features."""
    if os.environ.get("FASTGAN_CACHE"):
        return Path(os.environ["FASTGAN_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "fastgan" / "features"


@dataclass
class RealSet:
    """uint8 [N, C, H, W] real images and what they are, for the cache key and reports."""

    source: str  # e.g. "fashion-mnist" or "npy:/data/x.npy"
    split: str  # "train", "test", or "all" for a source without splits
    images: np.ndarray

    def describe(self) -> str:
        return f"{len(self.images):,} {self.source} {self.split}"


def has_splits(data: DataConfig) -> bool:
    return data.source.partition(":")[0] in SPLIT_SOURCES


def _take(source: Any, index: np.ndarray) -> np.ndarray:
    """Images at `index` as uint8 [len(index), C, H, W]; folder sources decode only those."""
    if hasattr(source, "images"):
        return np.ascontiguousarray(source.images[index])
    return np.stack([source[int(i)][0] for i in index])


def _pick(num_available: int, num: int) -> np.ndarray:
    """`num` seeded random indices in ascending order (all of them when there are fewer)."""
    if num >= num_available:
        return np.arange(num_available)
    return np.sort(np.random.default_rng(REAL_SEED).permutation(num_available)[:num])


def real_sets(data: DataConfig, model: ModelConfig, split: str, num: int, *, floor: bool) -> tuple[RealSet, RealSet | None]:
    """The reference set (up to `num` images of `split`) and, with `floor`, up to `num` training
    images that are not in it: the floor is what the metrics give for real images themselves.

    A source without splits, or `split = "train"`, gives two disjoint halves of one set (at most
    `num` each), so the floor never compares an image with itself.
    """
    split_name = split if has_splits(data) else "all"
    source = open_source(dataclasses.replace(data, split=split), model.channels, model.resolution)
    if not floor:
        return RealSet(source.name, split_name, _take(source, _pick(len(source), num))), None
    if split_name == "test":
        train = open_source(dataclasses.replace(data, split="train"), model.channels, model.resolution)
        ref = RealSet(source.name, "test", _take(source, _pick(len(source), num)))
        return ref, RealSet(train.name, "train", _take(train, _pick(len(train), num)))
    each = min(num, len(source) // 2)
    order = np.random.default_rng(REAL_SEED).permutation(len(source))
    ref = RealSet(source.name, f"{split_name}-a", _take(source, np.sort(order[:each])))
    return ref, RealSet(source.name, f"{split_name}-b", _take(source, np.sort(order[each : 2 * each])))


def eval_latents(num: int, model: ModelConfig, seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed latent set: z [num, z_dim] from `seed`, labels [num] cycling over the classes
    (exactly uniform, so class balance adds no noise to the scores), all 0 if unconditional."""
    z = draw_latents(model.latent, num, model.z_dim, generator=torch.Generator().manual_seed(seed))
    labels = torch.arange(num) % model.num_classes if model.conditional else torch.zeros(num, dtype=torch.long)
    return z.to(device), labels.to(device)


@torch.no_grad()
def generated_features(
    G: nn.Module, net: Embedder, z: torch.Tensor, labels: torch.Tensor, batch: int = 500, advance: Callable[[int], None] | None = None
) -> torch.Tensor:
    """float32 [N, D] CPU features of G's images, generated and embedded a batch at a time so large
    images never sit in memory all at once; `advance(k)` after each batch."""
    out = []
    for s in range(0, len(z), batch):
        out.append(extract_features(net, generate_uint8(G, z[s : s + batch], labels[s : s + batch])))
        if advance is not None:
            advance(len(out[-1]))
    return torch.cat(out)


def metric_options(num_smallest: int) -> dict[str, dict[str, Any]]:
    """KID's subset size capped at half the smallest set: subsets as big as the set would all be
    the same draw (a spread of 0), and KID is unbiased at any subset size, so only its spread grows."""
    return {"kid": {"subset_size": max(2, min(KID_SUBSET_SIZE, num_smallest // 2))}}


def fits_feature_net(model: ModelConfig) -> bool:
    """True for the 28x28 grey images the feature net was trained on; others are converted."""
    return model.channels == 1 and model.resolution == 28


def load_features(features: str, weights: Path | None, weights_sha256: str | None, device: torch.device) -> tuple[Any, str]:
    """The feature net and its id: the shipped Fashion-MNIST CNN, or the Inception detector from `weights`."""
    if features != "inception" and (weights is not None or weights_sha256 is not None):
        raise UsageError("--weights and --weights-sha256 are for --features inception; add it, or drop them")
    if features == "inception":
        from fastgan.metrics.inception import load_inception

        if weights is None:
            raise UsageError("--features inception needs --weights PATH to inception-2015-12-05.pt (see docs/metrics.md)")
        return load_inception(weights, device, weights_sha256)
    from fastgan.metrics.feature_net import FEATURE_NET_ID, load_feature_net

    return load_feature_net(device), FEATURE_NET_ID


def evaluate_generator(
    G: nn.Module,
    cfg: Config,
    names: list[str],
    *,
    n: int,
    split: str,
    seed: int,
    truncation: float,
    net: Any,
    net_id: str,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """`fastgan eval`'s scores: `n` samples of G (on its device) against the real `split`, beside
    the floor (real training images against the same split), with what was compared. `progress`
    counts images embedded: the two real sets (cached ones at once), then the generated ones."""
    device = next(G.parameters()).device
    ref, floor = real_sets(cfg.data, cfg.model, split, n, floor=True)
    assert floor is not None
    advance = None
    if progress is not None:
        progress.set_total(len(ref.images) + len(floor.images) + n)
        advance = progress.advance
    if ref.split.endswith("-a"):  # one set split in two: say which, since the model trained on it
        what = f"the {split} split" if has_splits(cfg.data) else f"its images ({ref.source} has no train/test splits)"
        print(f"fastgan: the reference and the floor are disjoint halves of {what}, {len(ref.images):,} images each", file=sys.stderr)

    cache_dir = feature_cache_dir()
    ref_features = real_features(ref.source, ref.split, ref.images, net, device, cache_dir, net_id=net_id, advance=advance)
    floor_features = real_features(floor.source, floor.split, floor.images, net, device, cache_dir, net_id=net_id, advance=advance)
    z, labels = eval_latents(n, cfg.model, seed, device)
    gen_features = generated_features(G, net, truncate(z, truncation), labels, advance=advance)
    options = metric_options(min(len(ref_features), len(floor_features), len(gen_features)))
    return {
        "metrics": compute_metrics(names, ref_features, gen_features, options),
        "floor": compute_metrics(names, ref_features, floor_features, options),
        "n": n,
        "split": split,
        "reference": ref.describe(),
        "floor_set": floor.describe(),
        "feature_net": net_id,
        "seed": seed,
        "truncation": truncation,
    }
