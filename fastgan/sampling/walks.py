"""Latent walks and truncation, as pure functions of tensors (no model, no device choice).

Walks: spherical interpolation (slerp) for gaussian z, whose mass lies on a thin shell of radius
~sqrt(z_dim): a straight line between two such points cuts through the low-norm interior the
generator never saw in training (White 2016, "Sampling Generative Networks", arXiv:1609.04468).
Uniform z fills its cube, so a straight line (lerp) stays inside it.

Truncation: z * psi pulls every latent toward the mean (0 for both distributions), trading
diversity for fidelity. This is StyleGAN's form (Karras et al. 2019, arXiv:1812.04948, there in
W); BigGAN's variant resamples coordinates beyond a threshold instead (Brock et al. 2018, arXiv:1809.11096).
"""

from __future__ import annotations

import torch

from fastgan.errors import UsageError

# Pairs of walk endpoints closer than this in angle (radians) are lerped: slerp divides by sin(angle).
_MIN_ANGLE = 1e-4


def check_truncation(psi: float) -> None:
    """A usage error unless psi is in [0, 1]; call it before any slow work."""
    if not 0.0 <= psi <= 1.0:
        raise UsageError(f"--truncation {psi:g}: psi must be in [0, 1] (1 = no truncation, 0 = every latent at the mean)")


def truncate(z: torch.Tensor, psi: float) -> torch.Tensor:
    """z pulled toward the mean 0 by psi in [0, 1]: 1 leaves z as it is (the same tensor), 0 gives the mean."""
    assert 0.0 <= psi <= 1.0, psi  # the CLI refuses other values with a usage error
    return z if psi == 1.0 else z * psi


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """a [R, Z], b [R, Z], t [K] -> [R, K, Z]: a straight line, exactly a at t=0 and b at t=1."""
    t = t.to(a.dtype)[None, :, None]
    return torch.where(t == 1, b[:, None], a[:, None] + t * (b - a)[:, None])


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """a [R, Z], b [R, Z], t [K] -> [R, K, Z]: along the great circle, with the norm interpolated
    linearly (so gaussian z keep a typical norm); exactly a at t=0 and b at t=1."""
    norm_a, norm_b = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)  # [R, 1]
    cos = ((a / norm_a) * (b / norm_b)).sum(dim=1, keepdim=True).clamp(-1, 1)
    angle = torch.acos(cos)[:, None]  # [R, 1, 1]
    tt = t.to(a.dtype)[None, :, None]  # [1, K, 1]
    sin = torch.sin(angle)
    safe = angle > _MIN_ANGLE
    w_a = torch.where(safe, torch.sin((1 - tt) * angle) / torch.where(safe, sin, 1), 1 - tt)
    w_b = torch.where(safe, torch.sin(tt * angle) / torch.where(safe, sin, 1), tt)
    unit = w_a * (a / norm_a)[:, None] + w_b * (b / norm_b)[:, None]
    walk = unit * (norm_a[:, None] + tt * (norm_b - norm_a)[:, None])
    # The formula gives the ends only up to rounding; pin them so the ends are plain samples.
    walk = torch.where(tt == 0, a[:, None], walk)
    return torch.where(tt == 1, b[:, None], walk)


def walk(dist: str, a: torch.Tensor, b: torch.Tensor, steps: int) -> torch.Tensor:
    """`steps` points from a [R, Z] to b [R, Z], ends included: [R, steps, Z]; slerp for a
    gaussian, lerp for a uniform latent distribution."""
    assert steps >= 2, steps
    t = torch.linspace(0, 1, steps)
    if dist == "gaussian":
        return slerp(a, b, t)
    if dist == "uniform":
        return lerp(a, b, t)
    raise AssertionError(f"unknown latent distribution {dist!r}")  # config choices keep users out of here


def class_walk(embed_a: torch.Tensor, embed_b: torch.Tensor, steps: int) -> torch.Tensor:
    """Class embeddings a [R, E] to b [R, E] in `steps`, ends included: [R, steps, E]. Embeddings
    are learned points, not draws from a distribution, so the walk is a straight line."""
    return lerp(embed_a, embed_b, torch.linspace(0, 1, steps))
