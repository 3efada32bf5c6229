"""Real-image features cached on disk, so each evaluation extracts features of generated images only.

The cache key hashes everything that changes the features: the feature net (`FEATURE_NET_ID`, a
hash of its weights), the preprocessing (`PREPROCESS_VERSION`), the source and split names, the
image count and shape, and a cheap fingerprint of the pixels. Files are safetensors with the key in
their metadata; a file whose metadata does not match is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from fastgan import files
from fastgan.metrics import feature_net
from fastgan.metrics.feature_net import PREPROCESS_VERSION, Embedder, extract_features, load_feature_net

# Bytes sampled for the fingerprint: ~1 MB hashes in milliseconds, whatever the dataset size.
FINGERPRINT_BYTES = 1 << 20


def fingerprint(images: torch.Tensor | np.ndarray) -> str:
    """sha256 prefix of a strided subsample of the image bytes (sampled on the images' device)."""
    flat = images.reshape(-1)
    # An odd stride is coprime with power-of-2 image sizes, so the sample moves across pixel positions
    # instead of reading the same column of every image.
    step = max(1, len(flat) // FINGERPRINT_BYTES) | 1
    sample = flat[::step]
    data = sample.cpu().numpy() if isinstance(sample, torch.Tensor) else np.asarray(sample)
    return hashlib.sha256(np.ascontiguousarray(data).tobytes()).hexdigest()[:16]


def cache_key(source_name: str, split: str, images: torch.Tensor | np.ndarray, net_id: str) -> dict[str, str]:
    return {
        "net": net_id,
        "preprocess": str(PREPROCESS_VERSION),
        "source": source_name,
        "split": split,
        "shape": "x".join(map(str, images.shape)),  # includes N
        "dtype": str(images.dtype),
        "fingerprint": fingerprint(images),
    }


def cache_path(cache_dir: Path, key: dict[str, str]) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{key['source']}-{key['split']}")[-80:]  # folder:PATH -> safe
    return cache_dir / f"{readable}-{digest}.safetensors"


def _load_if_valid(path: Path, key: dict[str, str]) -> torch.Tensor | None:
    try:
        with safe_open(str(path), framework="pt") as f:
            if f.metadata() != key:
                return None
            return f.get_tensor("features")
    except (OSError, SafetensorError):  # missing, truncated or foreign file: recompute
        return None


def real_features(
    source_name: str,
    split: str,
    images: torch.Tensor | np.ndarray,
    net: Embedder | None,
    device: torch.device | str,
    cache_dir: Path,
    *,
    net_id: str | None = None,
    advance: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """float32 [N, D] CPU features of uint8 [N, C, H, W] real images, from `cache_dir` when possible.

    `net` may be None: it is then loaded on `device` only on a cache miss. `net_id` defaults to
    `FEATURE_NET_ID` (read at call time); pass it when `net` is not the shipped feature net.
    `advance(k)` follows the progress, k images at a time.
    """
    key = cache_key(source_name, split, images, net_id or feature_net.FEATURE_NET_ID)
    path = cache_path(Path(cache_dir), key)
    cached = _load_if_valid(path, key)
    if cached is not None:
        if advance is not None:
            advance(len(cached))
        return cached
    if net is None:
        net = load_feature_net(device)
    if isinstance(images, np.ndarray):
        # torch warns on read-only arrays (memory-mapped or cached sources); a copy of uint8 data is cheap.
        images = torch.from_numpy(images if images.flags.writeable else images.copy())
    features = extract_features(net, images, advance=advance)
    path.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(path, save({"features": features.contiguous()}, metadata=key))  # a concurrent reader sees a whole file
    return features
