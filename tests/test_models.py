from __future__ import annotations

import pytest
import torch

from fastgan.config import ModelConfig
from fastgan.errors import UsageError
from fastgan.models import build_models

CASES = [
    dict(name="mlp"),
    dict(name="mlp", conditional=True, d_conditioning="concat"),
    dict(name="mlp", conditional=True, d_conditioning="projection"),
    dict(name="dcgan28", width=8),
    dict(name="dcgan28", width=8, conditional=True, d_conditioning="concat"),
    dict(name="dcgan", resolution=32, channels=3, width=8),
    dict(name="dcgan", resolution=64, channels=3, width=8),
    dict(name="dcgan", resolution=32, channels=1, width=8, conditional=True),
]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: "-".join(f"{v}" for v in kw.values()))
def test_shapes_and_ranges(kw: dict) -> None:
    cfg = ModelConfig(**kw)
    G, D = build_models(cfg)
    z = torch.randn(5, cfg.z_dim)
    labels = torch.randint(0, cfg.num_classes, (5,))
    images = G(z, labels)
    assert images.shape == (5, cfg.channels, cfg.resolution, cfg.resolution)
    assert images.min() >= -1 and images.max() <= 1  # tanh output
    logits = D(images, labels)
    assert logits.shape == (5,)
    assert not any(isinstance(m, torch.nn.Sigmoid) for m in D.modules())  # logits, not probabilities


def test_conditional_G_depends_on_label() -> None:
    G, _ = build_models(ModelConfig(name="mlp", conditional=True))
    z = torch.randn(1, 100).repeat(2, 1)
    out = G(z, torch.tensor([0, 7]))
    assert not torch.allclose(out[0], out[1])


def test_projection_D_depends_on_label() -> None:
    _, D = build_models(ModelConfig(name="dcgan28", width=4, conditional=True, d_conditioning="projection"))
    x = torch.randn(1, 1, 28, 28).repeat(2, 1, 1, 1)
    torch.nn.init.normal_(D.head.embed.weight)
    logits = D(x, torch.tensor([1, 2]))
    assert logits[0] != logits[1]


def test_mlp_matches_the_tutorial_layer_sizes() -> None:
    G, D = build_models(ModelConfig(name="mlp"))
    g_sizes = [(m.in_features, m.out_features) for m in G.modules() if isinstance(m, torch.nn.Linear)]
    d_sizes = [(m.in_features, m.out_features) for m in D.modules() if isinstance(m, torch.nn.Linear)]
    assert g_sizes == [(100, 256), (256, 512), (512, 1024), (1024, 784)]
    assert d_sizes == [(784, 1024), (1024, 512), (512, 256), (256, 1)]
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.3 for m in D.modules()) == 3


def test_impossible_resolution_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="model.resolution = 40"):
        build_models(ModelConfig(name="dcgan", resolution=40))
