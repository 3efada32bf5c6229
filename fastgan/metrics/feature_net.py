"""A small Fashion-MNIST classifier whose penultimate layer is the feature space for FD, KID and PR.

Inception-v3 (what FID uses) needs a download and 299x299 RGB inputs; this net is trained offline
by `scripts/train_feature_net.py` in minutes on a CPU and is meant for **28x28 grey** data
(MNIST-like). Other inputs are fitted to it: RGB becomes ITU-R BT.601 luma, other sizes are resized
with antialiased bilinear. Scores are therefore only comparable between runs that share
`FEATURE_NET_ID`, and never with published Inception FIDs.

Net: Conv3x3 32 -> pool -> Conv3x3 64 -> pool -> Conv3x3 128 -> pool -> FC 128 (features) -> FC 10.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_PATH = Path(__file__).parent / "weights" / "fashion_mnist_cnn.safetensors"
RECORD_PATH = WEIGHTS_PATH.with_suffix(".json")
NET_NAME = "fashion_mnist_cnn"
# Bump when `preprocess` changes what the net sees: it is part of every feature cache key.
PREPROCESS_VERSION = 1
INPUT_SIZE = 28
# ITU-R BT.601 luma, as in fastgan.data.fit (PIL's RGB -> L).
_LUMA = (0.299, 0.587, 0.114)


class FeatureCNN(nn.Module):
    def __init__(self, *, widths: tuple[int, int, int] = (32, 64, 128), feature_dim: int = 128, num_classes: int = 10):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 1
        for c_out in widths:  # 28 -> 14 -> 7 -> 3
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True)]
            layers.append(nn.MaxPool2d(2))
            c_in = c_out
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(widths[-1] * 3 * 3, feature_dim, bias=False),
            nn.BatchNorm1d(feature_dim),
            nn.ReLU(True),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(feature_dim, num_classes))
        self.feature_dim = feature_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))  # [B, 1, 28, 28] -> [B, feature_dim], post-ReLU like Inception's pool3

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, C, H, W] -> [B, feature_dim]: the feature-extractor interface (see `Embedder`)."""
        return self.features(preprocess(images))

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # [B, num_classes] logits


def weights_id(path: Path = WEIGHTS_PATH) -> str:
    """`NET_NAME-<sha256 prefix of the weights file>`; `-untrained` before the training script has run."""
    if not path.is_file():
        return f"{NET_NAME}-untrained"
    return f"{NET_NAME}-{hashlib.sha256(path.read_bytes()).hexdigest()[:16]}"


# Part of every feature cache key: retrained weights change it and so invalidate cached features.
FEATURE_NET_ID = weights_id()


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, C, H, W] (C = 1, 3 or 4) -> float32 [B, 1, 28, 28] in [-1, 1], on images' device."""
    assert images.dtype == torch.uint8 and images.ndim == 4, (images.dtype, images.shape)
    x = images.float()
    if x.shape[1] == 4:  # drop alpha
        x = x[:, :3]
    if x.shape[1] == 3:
        luma = torch.tensor(_LUMA, device=x.device).view(1, 3, 1, 1)
        x = (x * luma).sum(dim=1, keepdim=True)
    assert x.shape[1] == 1, f"expected 1, 3 or 4 channels, got {images.shape[1]}"
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
    x = x / 127.5 - 1.0  # the same [-1, 1] range the GANs produce
    return x.contiguous(memory_format=torch.channels_last)


def load_feature_net(device: torch.device | str, path: Path = WEIGHTS_PATH) -> FeatureCNN:
    """The trained net on `device`, in eval mode with grads off. Weights come from safetensors, never pickles."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; create it with: python -m scripts.train_feature_net")
    net = FeatureCNN()
    # Loaded on the host, then moved: safetensors rejects Accelerate's gloo device "cpu:0".
    net.load_state_dict(load_file(str(path)), strict=True)
    # channels_last: ~1.6x faster convs on CPU (measured, 2-core EPYC), and what cuDNN prefers.
    return net.to(device).to(memory_format=torch.channels_last).eval().requires_grad_(False)


class Embedder(Protocol):
    """What the metrics need from a feature net: this module's CNN, or the Inception detector
    (fastgan.metrics.inception). `embed` takes uint8 images on the net's device."""

    feature_dim: int
    training: bool

    @property
    def device(self) -> torch.device: ...
    def embed(self, images: torch.Tensor) -> torch.Tensor: ...
    def eval(self) -> Any: ...
    def train(self, mode: bool = True) -> Any: ...


@torch.no_grad()
def extract_features(
    net: Embedder, images: torch.Tensor, batch_size: int = 500, advance: Callable[[int], None] | None = None
) -> torch.Tensor:
    """uint8 [N, C, H, W] (any device) -> float32 [N, feature_dim] on the CPU; `advance(k)` after each batch.

    Each batch is moved to the net's device as uint8 and converted there (cheap transfers).
    """
    was_training = net.training
    net.eval()
    device = net.device
    out = torch.empty(len(images), net.feature_dim, dtype=torch.float32)
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device, non_blocking=True)
        out[start : start + len(batch)] = net.embed(batch).float().cpu()
        if advance is not None:
            advance(len(batch))
    net.train(was_training)
    return out


@torch.no_grad()
def classify(net: FeatureCNN, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """uint8 [N, C, H, W] -> int64 [N] predicted classes on the CPU (checks the net, not used by metrics)."""
    device = next(net.parameters()).device
    preds = [net(preprocess(images[s : s + batch_size].to(device))).argmax(1).cpu() for s in range(0, len(images), batch_size)]
    return torch.cat(preds)
