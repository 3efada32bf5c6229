"""Inception-v3 features from the standard TorchScript detector, when its weights are on disk.

`inception-2015-12-05.pt` is NVIDIA's TorchScript translation of the TensorFlow Inception graph
that FID was defined with (Heusel et al. 2017); StyleGAN2-ADA, StyleGAN3, EDM and clean-fid
compute FID with it, so numbers from it are comparable with papers (at the same N and reference
set). fastgan never downloads it: get it once from

    https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt

and pass `fastgan eval RUN --features inception --weights PATH`. The detector takes uint8 (or
0..255 float) RGB [N, 3, H, W] of any size, resizes to 299x299 itself, and with
`return_features=True` returns the 2048-d pool features. Grey images are repeated to 3 channels,
as StyleGAN2-ADA does.

The file is checked against a SHA-256 before it is loaded (a TorchScript file is code):
`PUBLISHED_SHA256`, the hash that k-diffusion (crowsonkb/k-diffusion, evaluation.py) pins for
this URL's 95,607,719-byte file, unless `--weights-sha256` names another (a copy you trust that
differs). The hash prefix is recorded in eval.json and the feature cache id, so results say
exactly which detector made them.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from fastgan.errors import UsageError

FILE_NAME = "inception-2015-12-05.pt"
URL = f"https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/{FILE_NAME}"
PUBLISHED_SHA256 = "f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4"  # pinned by k-diffusion
FEATURE_DIM = 2048


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_weights(path: Path, expected: str | None) -> str:
    """The file's SHA-256, or a UsageError when it is missing or does not match `expected`."""
    if not path.is_file():
        raise UsageError(f"--weights {path}: no such file; download {FILE_NAME} once from {URL}")
    actual = sha256_file(path)
    if expected is not None:
        expected = expected.strip().lower()
        if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
            raise UsageError(f"--weights-sha256 {expected!r}: not a SHA-256 (64 hex digits, as sha256sum prints)")
    if expected and actual != expected:
        raise UsageError(f"--weights {path}: SHA-256 {actual} does not match --weights-sha256 {expected}")
    if not expected and actual != PUBLISHED_SHA256:
        raise UsageError(
            f"--weights {path}: SHA-256 {actual} does not match the published {FILE_NAME} ({PUBLISHED_SHA256[:16]}...); "
            f"download it again from {URL}, or pass --weights-sha256 {actual} to use this file anyway"
        )
    return actual


def load_torchscript(path: Path, device: torch.device) -> torch.jit.ScriptModule:
    """torch.jit.load, guarded: it is deprecated in torch 2.14 (a FutureWarning, silenced here
    because there is no other way to run this file) and may be gone in a later torch."""
    jit_load = getattr(getattr(torch, "jit", None), "load", None)
    if jit_load is None:
        raise UsageError(f"this torch ({torch.__version__}) cannot load TorchScript files, which {FILE_NAME} is; use torch <= 2.14")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=FutureWarning)
        try:
            return jit_load(str(path), map_location=device).eval()
        except (RuntimeError, ValueError) as e:
            raise UsageError(f"--weights {path}: not a TorchScript file torch can load ({str(e).splitlines()[0]})") from None


class InceptionDetector(nn.Module):
    """fastgan's feature-extractor interface (`embed`, `feature_dim`) around the TorchScript detector."""

    feature_dim = FEATURE_DIM

    def __init__(self, detector: torch.jit.ScriptModule, device: torch.device) -> None:
        super().__init__()
        self.detector = detector
        self._device = device

    @property
    def device(self) -> torch.device:
        return self._device

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, C, H, W] (C = 1 or 3) on the detector's device -> float32 [B, 2048]."""
        if images.shape[1] == 1:
            images = images.expand(-1, 3, -1, -1)
        return self.detector(images, return_features=True).float()


def check_detector(net: InceptionDetector, path: Path, device: torch.device) -> None:
    """One tiny batch through the detector: a TorchScript file that is not the Inception feature
    network fails here with one line, not mid-eval with a traceback."""
    try:
        with torch.no_grad():
            out = net.embed(torch.zeros(2, 3, 32, 32, dtype=torch.uint8, device=device))
    except (RuntimeError, TypeError, ValueError) as e:
        raise UsageError(f"--weights {path}: loads, but is not the Inception-v3 feature network ({str(e).splitlines()[0]})") from None
    if tuple(out.shape) != (2, FEATURE_DIM):
        raise UsageError(f"--weights {path}: loads, but gives features of shape {tuple(out.shape)[1:]}, not Inception's ({FEATURE_DIM},)")


def load_inception(path: Path, device: torch.device, expected_sha256: str | None = None) -> tuple[InceptionDetector, str]:
    """The detector on `device` and its id for feature caches and reports (`inception-<sha prefix>`)."""
    digest = check_weights(path, expected_sha256)
    pinned = "matches --weights-sha256" if expected_sha256 else "the published file"
    print(f"fastgan: Inception detector {path}: SHA-256 {digest} ({pinned})", file=sys.stderr)
    net = InceptionDetector(load_torchscript(path, device), device).requires_grad_(False)
    check_detector(net, path, device)
    return net, f"inception-2015-12-05-{digest[:16]}"
