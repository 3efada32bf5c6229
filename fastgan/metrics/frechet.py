"""Fréchet distance between Gaussian fits of two feature sets (the "F" in FID).

Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", https://arxiv.org/abs/1706.08500:
    FD = |mu_r - mu_g|^2 + tr(S_r) + tr(S_g) - 2 tr((S_r S_g)^{1/2})
"""

from __future__ import annotations

import torch


def _sqrt_psd(mat: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric PSD matrix by eigendecomposition; round-off negatives clamp to 0."""
    eigvals, eigvecs = torch.linalg.eigh(mat)
    return (eigvecs * eigvals.clamp(min=0).sqrt()) @ eigvecs.T


def trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> torch.Tensor:
    """tr((S1 S2)^{1/2}) for symmetric PSD S1, S2.

    S1 S2 is not symmetric, but it is similar to S1^{1/2} S2 S1^{1/2}, which is symmetric PSD: its
    eigenvalues are real and non-negative, so `eigh` applies and no complex sqrtm (scipy's, with its
    spurious imaginary parts on singular covariances) is needed.
    """
    root1 = _sqrt_psd(sigma1)
    inner = root1 @ sigma2 @ root1
    inner = (inner + inner.T) / 2  # restore the symmetry round-off broke, so eigh sees what it assumes
    return torch.linalg.eigvalsh(inner).clamp(min=0).sqrt().sum()


def gaussian_fit(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, D] -> mean [D], unbiased covariance [D, D] (np.cov's convention, as in pytorch-fid), float64."""
    x = features.double()
    assert x.ndim == 2 and len(x) >= 2, f"need [N >= 2, D] features, got {tuple(x.shape)}"
    mu = x.mean(dim=0)
    centred = x - mu
    return mu, centred.T @ centred / (len(x) - 1)


def frechet_distance_from_stats(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor) -> float:
    mu1, sigma1, mu2, sigma2 = (t.double() for t in (mu1, sigma1, mu2, sigma2))
    mean_term = (mu1 - mu2).square().sum()
    fd = mean_term + sigma1.trace() + sigma2.trace() - 2 * trace_sqrt_product(sigma1, sigma2)
    return max(float(fd), 0.0)  # tiny negatives are round-off on identical sets; syncs once


def frechet_distance(real_features: torch.Tensor, gen_features: torch.Tensor) -> float:
    """FD between Gaussian fits of [N, D] and [M, D] features, computed in float64."""
    return frechet_distance_from_stats(*gaussian_fit(real_features), *gaussian_fit(gen_features))
