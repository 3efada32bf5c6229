"""The checkerboard check (fastgan.metrics.spectrum) on images whose spectrum is known."""

from __future__ import annotations

import pytest
import torch

from fastgan.metrics.spectrum import nyquist_power, nyquist_ratio


def test_a_checkerboard_is_all_nyquist_and_a_smooth_ramp_has_little() -> None:
    y, x = torch.meshgrid(torch.arange(28), torch.arange(28), indexing="ij")
    board = ((x + y) % 2 * 255).to(torch.uint8).expand(4, 1, 28, 28)
    ramp = (x * 8).to(torch.uint8).expand(4, 1, 28, 28)
    # a +-1 checkerboard puts all its power, |FFT|^2 / (H W) = 28 * 28, in the (14, 14) bin, which is in
    # both the Nyquist row and the Nyquist column: 2 * 784 over 56 bins = 28
    assert nyquist_power(board) == pytest.approx(28.0)
    assert nyquist_power(ramp) < 1e-2 * nyquist_power(board)
    noisy = ramp.clone()
    noisy[:, :, ::2, ::2] += 20  # a faint 2-px pattern on the ramp
    assert nyquist_ratio(noisy, ramp) > 2  # outside the 2x the time_to_quality check allows
    assert nyquist_ratio(ramp, ramp) == 1.0
