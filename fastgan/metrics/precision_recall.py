"""Improved precision and recall: k-NN estimates of the real and generated manifolds.

Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing Generative Models",
https://arxiv.org/abs/1904.06991. Each sample's manifold ball has the radius of its k-th nearest
neighbour (k = 3 in the paper) in its own set. Precision: the fraction of generated samples inside
some real ball (fidelity). Recall: the fraction of real samples inside some generated ball (coverage).

Distances are computed in row chunks with `torch.cdist`, so 10k x 10k needs ~`chunk_size` x 10k
floats at a time rather than the full matrix.
"""

from __future__ import annotations

import torch


def knn_radii(features: torch.Tensor, *, k: int = 3, chunk_size: int = 1000) -> torch.Tensor:
    """[N, D] -> [N] distance from each sample to its k-th nearest neighbour in the same set."""
    assert len(features) > k, f"need more than k={k} samples, got {len(features)}"
    radii = []
    for chunk in features.split(chunk_size):
        dist = torch.cdist(chunk, features)  # [chunk, N]
        # k + 1 smallest: the sample itself sits at distance ~0 and is not its own neighbour.
        radii.append(dist.topk(k + 1, dim=1, largest=False).values[:, k])
    return torch.cat(radii)


def fraction_in_manifold(queries: torch.Tensor, support: torch.Tensor, radii: torch.Tensor, *, chunk_size: int = 1000) -> torch.Tensor:
    """Fraction of `queries` [M, D] within `radii[j]` of some `support[j]` [N, D] (boundary counts as in)."""
    inside = [(torch.cdist(chunk, support) <= radii).any(dim=1) for chunk in queries.split(chunk_size)]
    return torch.cat(inside).double().mean()


def precision_recall(real_features: torch.Tensor, gen_features: torch.Tensor, *, k: int = 3, chunk_size: int = 1000) -> tuple[float, float]:
    """(precision, recall) of generated [M, D] against real [N, D] features."""
    real, gen = real_features.float(), gen_features.float()
    real_radii = knn_radii(real, k=k, chunk_size=chunk_size)
    gen_radii = knn_radii(gen, k=k, chunk_size=chunk_size)
    precision = fraction_in_manifold(gen, real, real_radii, chunk_size=chunk_size)
    recall = fraction_in_manifold(real, gen, gen_radii, chunk_size=chunk_size)
    return float(precision), float(recall)  # syncs: once per evaluation
