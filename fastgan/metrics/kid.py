"""Kernel Inception Distance: unbiased MMD^2 with a cubic polynomial kernel, averaged over subsets.

Bińkowski et al. 2018, "Demystifying MMD GANs", https://arxiv.org/abs/1801.01401 (Eq. 3 and
Appendix D). k(x, y) = (x.y / d + 1)^3. Unlike FD it is unbiased, so it is comparable across
sample sizes; subsets bound the O(m^2) kernel matrices, and their spread gives an error bar.
"""

from __future__ import annotations

import warnings

import torch


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[m, d], [n, d] -> [m, n] with k(x, y) = (x.y / d + 1)^3."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD^2 between samples x [m, d] and y [n, d]: the diagonals k(x_i, x_i) are left out."""
    m, n = len(x), len(y)
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    sum_xx = k_xx.sum() - k_xx.diagonal().sum()
    sum_yy = k_yy.sum() - k_yy.diagonal().sum()
    return sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2 * k_xy.sum() / (m * n)


def kernel_inception_distance(
    real_features: torch.Tensor,
    gen_features: torch.Tensor,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean, std) of unbiased MMD^2 over `num_subsets` pairs of random subsets, in float64.

    Each subset is drawn without replacement from each set (as torch-fidelity and clean-fid do);
    `subset_size` is capped at the smaller set's size, with a warning. The draw is seeded, so the
    same features give the same score.
    """
    num = min(len(real_features), len(gen_features))
    if subset_size > num:
        warnings.warn(f"KID subset_size {subset_size} > {num} samples available; using {num}", stacklevel=2)
        subset_size = num
    assert subset_size >= 2, "KID needs at least 2 samples per set"
    real, gen = real_features.double(), gen_features.double()
    rng = torch.Generator().manual_seed(seed)  # a CPU generator: the same draw on any device
    scores = torch.empty(num_subsets, dtype=torch.float64, device=real.device)
    for i in range(num_subsets):
        real_idx = torch.randperm(len(real), generator=rng)[:subset_size].to(real.device)
        gen_idx = torch.randperm(len(gen), generator=rng)[:subset_size].to(gen.device)
        scores[i] = mmd2_unbiased(real[real_idx], gen[gen_idx])
    std = scores.std(unbiased=False) if num_subsets > 1 else torch.zeros((), dtype=torch.float64)
    return float(scores.mean()), float(std)  # syncs: once per evaluation
