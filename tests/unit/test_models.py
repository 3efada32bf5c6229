from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fastgan.config import ModelConfig
from fastgan.config.load import config_from_tree
from fastgan.errors import UsageError
from fastgan.models import build_models
from fastgan.models.conditioning import LabelPlanes, LatentInput
from tests.support import REPO


def model_config(**keys: object) -> ModelConfig:
    """A ModelConfig from flat keywords, as a preset's [model] table: a model family's own keys
    (width, stage_widths, ...) go to its section, as they do in older presets."""
    return config_from_tree({"model": keys}, "test").model


CASES = [
    dict(name="mlp"),
    dict(name="mlp", conditional=True, d_conditioning="concat"),
    dict(name="mlp", conditional=True, d_conditioning="projection"),
    dict(name="dcgan28", width=8),
    dict(name="dcgan28", width=8, conditional=True, d_conditioning="concat"),
    dict(name="dcgan", resolution=32, channels=3, width=8),
    dict(name="dcgan", resolution=64, channels=3, width=8),
    dict(name="dcgan", resolution=32, channels=1, width=8, conditional=True),
    dict(name="tutorial-dcgan", z_dim=96, latent="uniform"),
    dict(name="tutorial-dcgan", conditional=True, d_conditioning="concat"),
]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: "-".join(f"{v}" for v in kw.values()))
def test_shapes_and_ranges(kw: dict) -> None:
    cfg = model_config(**kw)
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
    G, _ = build_models(model_config(name="mlp", conditional=True))
    z = torch.randn(1, 100).repeat(2, 1)
    out = G(z, torch.tensor([0, 7]))
    assert not torch.allclose(out[0], out[1])


def test_projection_D_depends_on_label() -> None:
    _, D = build_models(model_config(name="dcgan28", width=4, conditional=True, d_conditioning="projection"))
    x = torch.randn(1, 1, 28, 28).repeat(2, 1, 1, 1)
    torch.nn.init.normal_(D.head.embed.weight)
    logits = D(x, torch.tensor([1, 2]))
    assert logits[0] != logits[1]


def test_mlp_matches_the_tutorial_layer_sizes() -> None:
    G, D = build_models(model_config(name="mlp"))
    g_sizes = [(m.in_features, m.out_features) for m in G.modules() if isinstance(m, torch.nn.Linear)]
    d_sizes = [(m.in_features, m.out_features) for m in D.modules() if isinstance(m, torch.nn.Linear)]
    assert g_sizes == [(100, 256), (256, 512), (512, 1024), (1024, 784)]
    assert d_sizes == [(784, 1024), (1024, 512), (512, 256), (256, 1)]
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.3 for m in D.modules()) == 3


def test_impossible_resolution_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="model.resolution = 40"):
        build_models(model_config(name="dcgan", resolution=40))


# ---------------------------------------------------------------------------- the classic MNIST DCGAN tutorial's model

SEED_G = [  # the tutorial's build_dc_generator, in order
    (torch.nn.Linear, dict(in_features=96, out_features=1024)),
    (torch.nn.ReLU, {}),
    (torch.nn.BatchNorm1d, dict(num_features=1024)),
    (torch.nn.Linear, dict(in_features=1024, out_features=7 * 7 * 128)),
    (torch.nn.ReLU, {}),
    (torch.nn.BatchNorm1d, dict(num_features=7 * 7 * 128)),
    (torch.nn.ConvTranspose2d, dict(in_channels=128, out_channels=64, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))),
    (torch.nn.ReLU, {}),
    (torch.nn.BatchNorm2d, dict(num_features=64)),
    (torch.nn.ConvTranspose2d, dict(in_channels=64, out_channels=1, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))),
    (torch.nn.Tanh, {}),
]
SEED_D = [  # build_dc_classifier, in order
    (torch.nn.Conv2d, dict(in_channels=1, out_channels=32, kernel_size=(5, 5), stride=(1, 1), padding=(0, 0))),
    (torch.nn.LeakyReLU, dict(negative_slope=0.01)),
    (torch.nn.MaxPool2d, dict(kernel_size=2, stride=2)),
    (torch.nn.Conv2d, dict(in_channels=32, out_channels=64, kernel_size=(5, 5), stride=(1, 1), padding=(0, 0))),
    (torch.nn.LeakyReLU, dict(negative_slope=0.01)),
    (torch.nn.MaxPool2d, dict(kernel_size=2, stride=2)),
    (torch.nn.Linear, dict(in_features=1024, out_features=1024)),
    (torch.nn.LeakyReLU, dict(negative_slope=0.01)),
    (torch.nn.Linear, dict(in_features=1024, out_features=1)),
]


def layers(module: torch.nn.Module) -> list[torch.nn.Module]:
    """Leaf modules that compute something, in forward order (the flatten is a reshape)."""
    return [m for m in module.modules() if not list(m.children()) and not isinstance(m, torch.nn.Flatten)]


def matches(found: list[torch.nn.Module], expected: list[tuple[type, dict]]) -> None:
    assert [type(m) for m in found] == [t for t, _ in expected]
    for m, (_, attrs) in zip(found, expected, strict=True):
        assert {k: getattr(m, k) for k in attrs} == attrs, m
        if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            assert m.bias is not None  # PyTorch's defaults, as in the tutorial


def test_tutorial_dcgan_is_the_seeds_layer_list() -> None:
    G, D = build_models(model_config(name="tutorial-dcgan", z_dim=96, latent="uniform"))
    matches(layers(G.fc) + layers(G.conv), SEED_G)  # G.latent passes z through when unconditional
    matches(layers(D.body) + [D.head.linear], SEED_D)  # D.planes likewise; the head's linear is the last FC
    assert [type(m) for m in layers(G)] == [LatentInput] + [t for t, _ in SEED_G]  # nothing else in G
    assert [type(m) for m in layers(D)] == [LabelPlanes, torch.nn.Linear] + [t for t, _ in SEED_D[:-1]]  # nor in D


def forward_flops(module: torch.nn.Module, *inputs: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(*inputs)
    return int(counter.get_total_flops())


def test_tutorial_dcgan_flops_by_hand() -> None:
    """2 x multiply-adds per image, layer by layer (biases, BatchNorm and activations not counted)."""
    G, D = build_models(model_config(name="tutorial-dcgan", z_dim=96, latent="uniform"))
    G.eval()
    labels = torch.zeros(4, dtype=torch.long)
    g = 2 * (96 * 1024 + 1024 * 6272 + 7 * 7 * 128 * 64 * 16 + 14 * 14 * 64 * 1 * 16)  # FC, FC, ConvT (16 taps per input pixel), ConvT
    d = 2 * (24 * 24 * 32 * 25 + 8 * 8 * 64 * 32 * 25 + 1024 * 1024 + 1024)  # conv (valid), conv, FC, FC
    assert forward_flops(G, torch.zeros(4, 96), labels) == 4 * g == 4 * 26_288_128
    assert forward_flops(D, torch.zeros(4, 1, 28, 28), labels) == 4 * d == 4 * 9_574_400


def test_tutorial_dcgan_training_step_flops(tmp_path: Path) -> None:
    """A fastgan step on the DCGAN tutorial's model costs ~0.18 GFLOP per image (dcgan28 at width 64: ~0.9)."""
    from fastgan.bench.measure import flops_per_step
    from fastgan.config import load_config
    from fastgan.data.sources import open_source
    from fastgan.train.setup import make_accelerator

    np.save(tmp_path / "x.npy", np.zeros((64, 28, 28), dtype=np.uint8))
    cfg = load_config(REPO / "configs" / "mnist-dcgan.toml", [f"data.source=npy:{tmp_path / 'x.npy'}", "train.batch_size=32"])
    per_image = flops_per_step(cfg, make_accelerator(cfg), open_source(cfg.data, 1, 28)) / 32
    assert 0.15e9 < per_image < 0.19e9


# ---------------------------------------------------------------------------- r3gan

R3GAN_SIZES = [  # resolution, stages (G order), blocks
    (28, (32, 32, 16), (1, 1, 1)),
    (32, (32, 32, 16, 16), (1, 1, 1, 1)),
    (64, (32, 32, 16, 16, 16), (1, 2, 1, 1, 0)),
]


@pytest.mark.parametrize(("resolution", "widths", "blocks"), R3GAN_SIZES, ids=lambda v: str(v))
@pytest.mark.parametrize("conditioning", ["none", "projection", "concat"])
def test_r3gan_shapes_at_every_resolution(resolution: int, widths: tuple, blocks: tuple, conditioning: str) -> None:
    cfg = model_config(
        name="r3gan", resolution=resolution, channels=3, stage_widths=widths, stage_blocks=blocks,
        conditional=conditioning != "none", d_conditioning="concat" if conditioning == "concat" else "projection",
    )  # fmt: skip
    G, D = build_models(cfg)
    labels = torch.randint(0, 10, (3,))
    images = G(torch.randn(3, cfg.z_dim), labels)
    assert images.shape == (3, 3, resolution, resolution)
    assert D(images, labels).shape == (3,)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._NormBase) for m in [*G.modules(), *D.modules()])


def test_r3gan_blocks_start_as_the_identity_and_train_in_bf16() -> None:
    from fastgan.models.r3gan import ResidualBlock

    G, D = build_models(model_config(name="r3gan", stage_widths=(32, 32, 16), stage_blocks=(2, 1, 1)))
    found = [m for m in [*G.modules(), *D.modules()] if isinstance(m, ResidualBlock)]
    assert len(found) == 8
    x = torch.randn(2, 32, 7, 7)
    assert torch.equal(found[0](x), x)  # zero-initialised last layer
    z, labels = torch.randn(4, 100), torch.zeros(4, dtype=torch.long)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        D(G(z, labels), labels).float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in G.parameters())


def test_r3gan_refuses_impossible_stages() -> None:
    with pytest.raises(UsageError, match="basis"):
        build_models(model_config(name="r3gan", resolution=28, stage_widths=(32, 32, 32, 32), stage_blocks=(1, 1, 1, 1)))
    with pytest.raises(UsageError, match="one entry per stage"):
        build_models(model_config(name="r3gan", stage_widths=(32, 32, 32), stage_blocks=(1, 1)))
    with pytest.raises(UsageError, match="group_channels"):
        build_models(model_config(name="r3gan", stage_widths=(30, 30, 30), group_channels=16))
