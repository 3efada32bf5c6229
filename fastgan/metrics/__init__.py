"""Sample-quality metrics on feature vectors: a registry of small functions, one per metric.

Every entry takes (real_features [N, D], gen_features [M, D], **options) and returns a flat dict of
floats, so callers can merge results and append them as one JSONL record. Features come from
`fastgan.metrics.feature_net.extract_features` (real ones through `fastgan.metrics.cache`).
A new metric is a new file plus one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from fastgan.errors import UsageError
from fastgan.metrics.frechet import frechet_distance
from fastgan.metrics.kid import kernel_inception_distance
from fastgan.metrics.precision_recall import precision_recall

Metric = Callable[..., dict[str, float]]


def fd_metric(real_features: torch.Tensor, gen_features: torch.Tensor) -> dict[str, float]:
    return {"fd": frechet_distance(real_features, gen_features)}


def kid_metric(
    real_features: torch.Tensor,
    gen_features: torch.Tensor,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> dict[str, float]:
    kid, kid_std = kernel_inception_distance(real_features, gen_features, num_subsets=num_subsets, subset_size=subset_size, seed=seed)
    return {"kid": kid, "kid_std": kid_std}


def pr_metric(real_features: torch.Tensor, gen_features: torch.Tensor, *, k: int = 3) -> dict[str, float]:
    precision, recall = precision_recall(real_features, gen_features, k=k)
    return {"precision": precision, "recall": recall}


METRICS: dict[str, Metric] = {"fd": fd_metric, "kid": kid_metric, "pr": pr_metric}


def check_metric_names(names: Iterable[str]) -> list[str]:
    """`names` as a list, or a UsageError naming the allowed metrics (call it before any slow work)."""
    names = list(names)
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise UsageError(f"unknown metric {', '.join(map(repr, unknown))}; choose from: {', '.join(METRICS)}")
    return names


def compute_metrics(
    names: Iterable[str],
    real_features: torch.Tensor,
    gen_features: torch.Tensor,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, float]:
    """Run each named metric and merge the results, e.g. {"fd": ..., "kid": ..., "kid_std": ...}.

    `options` maps a metric name to its keyword options, e.g. {"kid": {"subset_size": 500}}.
    """
    options = options or {}
    results: dict[str, float] = {}
    for name in check_metric_names(names):
        results.update(METRICS[name](real_features, gen_features, **options.get(name, {})))
    return results
