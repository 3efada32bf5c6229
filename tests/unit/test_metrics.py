"""Metrics: the math on small tensors, then sanity on real Fashion-MNIST features, then the cache."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from fastgan.errors import UsageError
from fastgan.metrics import METRICS, cache, compute_metrics
from fastgan.metrics.feature_net import RECORD_PATH, FeatureCNN, extract_features, load_feature_net
from fastgan.metrics.frechet import frechet_distance, trace_sqrt_product
from fastgan.metrics.kid import kernel_inception_distance
from fastgan.metrics.precision_recall import precision_recall
from tests.support import needs_fashion

NUM_SUBSET = 2000  # images per set in the FD sanity checks: enough for a stable 128-d covariance


def random_features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


# ---------------------------------------------------------------------------- math


def test_trace_sqrt_product_matches_closed_form() -> None:
    # For commuting S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T: tr((S1 S2)^{1/2}) = sum sqrt(a b).
    q, _ = torch.linalg.qr(random_features(6, 6, seed=1))
    a, b = torch.rand(6, dtype=torch.float64) + 0.1, torch.rand(6, dtype=torch.float64)
    expected = (a * b).sqrt().sum()
    got = trace_sqrt_product(q @ torch.diag(a) @ q.T, q @ torch.diag(b) @ q.T)
    assert got.item() == pytest.approx(expected.item(), rel=1e-10)


def test_fd_of_a_set_with_itself_is_zero_and_grows_with_a_shift() -> None:
    x = random_features(500, 16, seed=0)
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    # Same covariance, mean moved by 1 in each of 16 dims: FD = |dmu|^2 = 16.
    assert frechet_distance(x, x + 1.0) == pytest.approx(16.0, rel=1e-9)


def naive_mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Eq. 3 of Bińkowski et al. 2018 with explicit loops, k(a, b) = (a.b / d + 1)^3."""
    d = x.shape[1]

    def k(a: torch.Tensor, b: torch.Tensor) -> float:
        return (float(a @ b) / d + 1) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i, j in itertools.permutations(range(m), 2)) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i, j in itertools.permutations(range(n), 2)) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_naive_unbiased_mmd() -> None:
    x, y = random_features(20, 5, seed=2), random_features(20, 5, seed=3, shift=0.5)
    # One subset of the full size is the whole set in a new order: MMD^2 does not depend on order.
    kid, kid_std = kernel_inception_distance(x, y, num_subsets=1, subset_size=20)
    assert kid == pytest.approx(naive_mmd2_unbiased(x, y), rel=1e-10)
    assert kid_std == 0.0


def test_kid_is_seeded_and_near_zero_for_one_distribution() -> None:
    x = random_features(400, 8, seed=4)
    same = kernel_inception_distance(x, x, num_subsets=20, subset_size=100, seed=7)
    assert same == kernel_inception_distance(x, x, num_subsets=20, subset_size=100, seed=7)
    shifted, _ = kernel_inception_distance(x, x + 1.0, num_subsets=20, subset_size=100, seed=7)
    assert abs(same[0]) < 0.05 * shifted


def test_kid_caps_subset_size_with_a_warning() -> None:
    x = random_features(30, 4, seed=5)
    with pytest.warns(UserWarning, match="subset_size"):
        kernel_inception_distance(x, x, num_subsets=2, subset_size=1000)


def test_precision_recall_of_a_set_with_itself_is_one_and_disjoint_sets_zero() -> None:
    x = random_features(300, 8, seed=6)
    assert precision_recall(x, x, chunk_size=64) == (1.0, 1.0)
    assert precision_recall(x, x + 100.0, chunk_size=64) == (0.0, 0.0)


def test_precision_recall_sees_mode_dropping_as_low_recall() -> None:
    real = torch.cat([random_features(200, 4, seed=8), random_features(200, 4, seed=9, shift=20.0)])
    gen = random_features(400, 4, seed=10)  # only the first mode
    precision, recall = precision_recall(real, gen)
    assert precision > 0.9 and 0.3 < recall < 0.6


def test_registry_returns_flat_float_dicts_and_rejects_unknown_names() -> None:
    x, y = random_features(100, 4, seed=11), random_features(100, 4, seed=12)
    results = compute_metrics(["fd", "kid", "pr"], x, y, options={"kid": {"num_subsets": 5, "subset_size": 50}})
    assert set(results) == {"fd", "kid", "kid_std", "precision", "recall"}
    assert all(isinstance(v, float) for v in results.values())
    with pytest.raises(UsageError, match="choose from: fd, kid, pr"):
        compute_metrics(["fd", "fid"], x, y)
    assert set(METRICS) == {"fd", "kid", "pr"}


# ---------------------------------------------------------------------------- feature net


def test_extract_features_fits_rgb_and_other_sizes() -> None:
    net = FeatureCNN().eval()
    grey = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    feats = extract_features(net, grey, batch_size=3)
    assert feats.shape == (8, net.feature_dim) and feats.dtype == torch.float32
    # Grey replicated to RGB has luma equal to the grey value (the weights sum to 1).
    assert torch.allclose(extract_features(net, grey.repeat(1, 3, 1, 1)), feats, atol=1e-4)
    assert extract_features(net, torch.zeros(2, 3, 32, 32, dtype=torch.uint8)).shape == (2, net.feature_dim)


@pytest.fixture(scope="module")
def fashion() -> dict[str, torch.Tensor]:
    """Features of Fashion-MNIST train/test subsets, the whole test split and uniform noise, from the shipped net."""
    from fastgan.config import DataConfig
    from fastgan.data.sources import open_source

    def split(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        src = open_source(DataConfig(source="fashion-mnist", split=name, download=False), channels=1, resolution=28)
        images, labels = src.arrays()
        return torch.from_numpy(images.copy()), torch.from_numpy(labels)

    torch.manual_seed(0)
    net = load_feature_net("cpu")
    train_img, train_lbl = split("train")
    test_img, test_lbl = split("test")
    noise_img = torch.randint(0, 256, (NUM_SUBSET, 1, 28, 28), dtype=torch.uint8)
    test_feats = extract_features(net, test_img)
    with torch.no_grad():
        test_pred = net.head(test_feats).argmax(1)  # the head on these features: no second pass over 10k images
    return {
        "train": extract_features(net, train_img[:NUM_SUBSET]),
        "test": test_feats[:NUM_SUBSET],
        "noise": extract_features(net, noise_img),
        # A generator that dropped half the modes: classes 0-4 only.
        "half_classes": extract_features(net, train_img[train_lbl < 5][:NUM_SUBSET]),
        "accuracy": (test_pred == test_lbl).double().mean(),
    }


@needs_fashion
def test_feature_net_reaches_its_recorded_accuracy(fashion: dict[str, torch.Tensor]) -> None:
    record = json.loads(RECORD_PATH.read_text())
    assert record["test_accuracy"] >= 0.90
    assert fashion["accuracy"].item() == pytest.approx(record["test_accuracy"], abs=0.005)


@needs_fashion
def test_fd_orders_same_data_below_other_split_below_noise(fashion: dict[str, torch.Tensor]) -> None:
    self_fd = frechet_distance(fashion["test"], fashion["test"])
    split_fd = frechet_distance(fashion["train"], fashion["test"])
    noise_fd = frechet_distance(fashion["noise"], fashion["test"])
    assert self_fd == pytest.approx(0.0, abs=1e-6)
    assert noise_fd > 10 * split_fd > 0


@needs_fashion
def test_kid_and_pr_on_fashion_features(fashion: dict[str, torch.Tensor]) -> None:
    def score(gen: str, real: str = "test") -> dict[str, float]:
        return compute_metrics(["kid", "pr"], fashion[real], fashion[gen], {"kid": {"num_subsets": 10, "subset_size": 500}})

    same, split, noise, half = score("test"), score("train"), score("noise"), score("half_classes")
    assert same["precision"] == same["recall"] == 1.0
    assert abs(same["kid"]) < 0.01 * noise["kid"] and abs(split["kid"]) < 0.01 * noise["kid"]
    assert split["precision"] > 0.75 and split["recall"] > 0.75
    # Noise: nothing real is covered. Some noise lands in the balls of real outliers, so precision is low, not 0.
    assert noise["recall"] < 0.05 and noise["precision"] < 0.5 * split["precision"]
    # Mode dropping costs recall, not precision.
    assert half["recall"] < 0.65 < 0.75 < half["precision"]


# ---------------------------------------------------------------------------- cache


class CountingExtract:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, net: FeatureCNN, images: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        self.calls += 1
        return extract_features(net, images, **kwargs)


def test_real_feature_cache_is_reused_and_invalidated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CountingExtract()
    monkeypatch.setattr(cache, "extract_features", counter)
    net = FeatureCNN().eval()  # random weights: the cache does not care what the net is
    images = np.random.default_rng(0).integers(0, 256, (40, 1, 28, 28), dtype=np.uint8)

    def get(**kw: Any) -> torch.Tensor:
        return cache.real_features("fashion-mnist", "test", images, net, "cpu", tmp_path, **kw)

    first = get()
    assert counter.calls == 1 and len(list(tmp_path.glob("*.safetensors"))) == 1
    assert torch.equal(get(), first) and counter.calls == 1  # second call: read from disk
    get(net_id="another-net")  # explicit id
    assert counter.calls == 2
    monkeypatch.setattr(cache.feature_net, "FEATURE_NET_ID", "retrained-net")  # retrained shipped weights
    get()
    assert counter.calls == 3
    monkeypatch.setattr(cache, "PREPROCESS_VERSION", 999)
    get(net_id="another-net")
    assert counter.calls == 4
    images[5, 0, 3, 3] ^= 0xFF  # a pixel the strided fingerprint samples (stride 1 on small data)
    get(net_id="another-net")
    assert counter.calls == 5
    # A corrupt file is recomputed, not trusted.
    for path in tmp_path.glob("*.safetensors"):
        path.write_bytes(b"junk")
    get(net_id="another-net")
    assert counter.calls == 6
