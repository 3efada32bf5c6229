"""Fit images to the model: channel count and square resolution, uint8 in and out."""

from __future__ import annotations

import numpy as np

# ITU-R BT.601 luma, the weights PIL uses for RGB -> L.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def fit_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """uint8 [N, C, H, W] -> [N, channels, H, W]: grey repeated to RGB, RGB to luma, alpha dropped."""
    c = images.shape[1]
    if c == channels:
        return images
    if c == 4:
        images, c = images[:, :3], 3
    if c == 1 and channels == 3:
        return np.repeat(images, 3, axis=1)
    if c == 3 and channels == 1:
        grey = np.tensordot(images.astype(np.float32), _LUMA, axes=([1], [0]))
        return np.clip(np.rint(grey), 0, 255).astype(np.uint8)[:, None]
    if c == channels:
        return images
    raise ValueError(f"cannot convert {c}-channel images to {channels} channels")


CHANNEL_CHANGE = {
    (1, 3): "grey repeated to RGB",
    (3, 1): "RGB to grey (luma)",
    (4, 3): "alpha dropped",
    (4, 1): "alpha dropped, RGB to grey (luma)",
}


def describe_fit(shape: tuple[int, ...], channels: int, resolution: int, resize: str = "antialiased bilinear") -> str:
    """What fitting images of `shape` [N, C, H, W] to the model does, in words; "" when nothing."""
    _, c, h, w = shape
    steps = [CHANNEL_CHANGE.get((c, channels), f"{c} to {channels} channels")] if c != channels else []
    if h != w:
        steps.append(f"centre-cropped to {min(h, w)}x{min(h, w)}")
    if min(h, w) != resolution:
        steps.append(f"resized to {resolution}x{resolution} ({resize})")
    if not steps:
        return ""
    return f"{c}x{h}x{w} images converted to the model's {channels}x{resolution}x{resolution}: {', '.join(steps)}"


def fit_array(images: np.ndarray, channels: int, resolution: int) -> np.ndarray:
    """uint8 [N, C, H, W] fitted to [N, channels, resolution, resolution].

    Non-square images are centre-cropped to a square first; resizing is antialiased bilinear.
    """
    images = fit_channels(images, channels)
    n, c, h, w = images.shape
    if h == w == resolution:
        return np.ascontiguousarray(images)
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    images = images[:, :, top : top + side, left : left + side]
    import torch  # heavy: only when a resize is needed
    import torch.nn.functional as F

    out = np.empty((n, c, resolution, resolution), dtype=np.uint8)
    for start in range(0, n, 4096):  # chunks bound the float32 copy's memory
        # a copy straight to float32: the source may be a read-only memory map (from_numpy would warn)
        chunk = torch.tensor(images[start : start + 4096], dtype=torch.float32)
        resized = F.interpolate(chunk, size=(resolution, resolution), mode="bilinear", antialias=True, align_corners=False)
        out[start : start + 4096] = resized.round().clamp(0, 255).to(torch.uint8).numpy()
    return out
