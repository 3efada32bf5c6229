"""Checkerboard detector: the images' power at the highest spatial frequency, against real images'.

Transposed convolutions with stride 2 leave a periodic 2-pixel pattern (Odena et al. 2016,
"Deconvolution and Checkerboard Artifacts", distill.pub/2016/deconv-checkerboard): its energy
sits in the Nyquist row and column of the 2D spectrum. `nyquist_power` is the mean power there,
per image and channel, after removing each image's mean; `nyquist_ratio` divides the generated
images' by the real ones'. Near 1 means real-looking fine texture; well above 1 (a checkerboard)
or well below (blur) does not.
"""

from __future__ import annotations

import torch


def nyquist_power(images: torch.Tensor, batch: int = 1000) -> float:
    """Mean |FFT|^2 over the bins at the highest frequency in y or x, for uint8 [N, C, H, W] (H, W even)."""
    n, _, h, w = images.shape
    assert h % 2 == 0 and w % 2 == 0, "the Nyquist bin needs an even side"
    total = 0.0
    for s in range(0, n, batch):
        x = images[s : s + batch].float() / 127.5 - 1
        x = x - x.mean(dim=(2, 3), keepdim=True)
        power = torch.fft.fft2(x).abs().square() / (h * w)  # [B, C, H, W], Parseval-normalised
        edge = torch.cat([power[:, :, h // 2, :], power[:, :, :, w // 2]], dim=2)  # Nyquist row and column
        total += edge.mean(dim=2).sum().item()
    return total / (n * images.shape[1])


def nyquist_ratio(generated: torch.Tensor, real: torch.Tensor) -> float:
    """Generated images' Nyquist power over real images' (1 = the same fine texture)."""
    return nyquist_power(generated) / nyquist_power(real)
