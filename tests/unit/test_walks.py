"""Latent walks and truncation (fastgan.sampling.walks), as pure functions. cli/test_sample.py
checks `fastgan sample --interpolate/--truncation` on tiny runs."""

from __future__ import annotations

import torch

from fastgan.latents import draw_latents
from fastgan.sampling.walks import lerp, slerp, truncate, walk


def test_walk_ends_are_exactly_the_latents() -> None:
    g = torch.Generator().manual_seed(0)
    for dist in ("gaussian", "uniform"):
        a, b = draw_latents(dist, 3, 64, generator=g), draw_latents(dist, 3, 64, generator=g)
        path = walk(dist, a, b, 7)
        assert path.shape == (3, 7, 64)
        assert torch.equal(path[:, 0], a) and torch.equal(path[:, -1], b)


def test_slerp_follows_the_sphere_and_lerp_the_line() -> None:
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(2, 512, generator=g), torch.randn(2, 512, generator=g)
    t = torch.linspace(0, 1, 9)
    mid_slerp, mid_lerp = slerp(a, b, t)[:, 4], lerp(a, b, t)[:, 4]
    # Two gaussian draws are nearly orthogonal: the straight midpoint has ~1/sqrt(2) of their norm,
    # the spherical one keeps it (the point of slerp for gaussian z).
    norm = (a.norm(dim=1) + b.norm(dim=1)) / 2
    assert torch.allclose(mid_slerp.norm(dim=1), norm, rtol=1e-4)
    assert (mid_lerp.norm(dim=1) < 0.8 * norm).all()
    assert torch.allclose(mid_lerp, (a + b) / 2)
    same = slerp(a, a, t)  # zero angle: no division by sin(0)
    assert torch.isfinite(same).all() and torch.allclose(same, a[:, None].expand_as(same))


def test_walk_picks_slerp_for_gaussian_and_lerp_for_uniform() -> None:
    g = torch.Generator().manual_seed(2)
    a, b = draw_latents("uniform", 2, 16, generator=g), draw_latents("uniform", 2, 16, generator=g)
    assert torch.equal(walk("uniform", a, b, 5), lerp(a, b, torch.linspace(0, 1, 5)))
    assert torch.equal(walk("gaussian", a, b, 5), slerp(a, b, torch.linspace(0, 1, 5)))
    assert a.min() >= -1 and a.max() <= 1


def test_truncation_scales_toward_the_mean_and_one_changes_nothing() -> None:
    z = torch.randn(4, 8)
    assert truncate(z, 1.0) is z
    assert torch.equal(truncate(z, 0.5), z * 0.5)
    assert torch.count_nonzero(truncate(z, 0.0)) == 0
