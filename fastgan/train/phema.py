"""Power-function EMAs of G for post-hoc EMA (Karras et al. 2024, "Analyzing and Improving the
Training Dynamics of Diffusion Models", https://arxiv.org/abs/2312.02696, section 3 and
appendix C).

A power-function EMA at time t (images seen) averages G's weights with density proportional to
tau^gamma over tau in [0, t]: its width relative to t, sigma_rel, does not depend on t, and
tracking it needs beta_t = (1 - dt / t)^(gamma + 1) per step of dt images (eq. 127): the first
step (t = dt) has beta = 0, so no initial value matters. Snapshots of a few such EMAs, taken
during training, span the profiles of any other sigma_rel: `posthoc_coefficients` finds the
least-squares combination of the snapshots whose profile is closest to the one asked for
(algorithm 3), and that combination of the snapshots' weights is the reconstructed G_ema.

Like fastgan.train.ema.EMA, the profiles live in one flat buffer, [K, numel(G)] in G's memory
order, so an update is one cat, K lerps and one `where` whatever the model, with no host sync
(the betas are host floats from images seen). A skipped G step leaves them exactly as they were.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from fastgan.train.ema import in_memory_order, memory_order

SIGMA_REL_MAX = math.sqrt(1 / 12)  # sigma_rel at gamma = 0 (a plain average): wider profiles need gamma < 0


def sigma_rel_of(gamma: float) -> float:
    """The relative standard deviation of the power-function profile tau^gamma on [0, 1] (eq. 123)."""
    return math.sqrt((gamma + 1) / ((gamma + 2) ** 2 * (gamma + 3)))


def gamma_of(sigma_rel: float) -> float:
    """The exponent gamma >= 0 whose profile has this sigma_rel, in (0, sqrt(1/12)]: the inverse of
    `sigma_rel_of`, which falls monotonically for gamma >= 0. Bisection in log space, float64."""
    if not 0 < sigma_rel <= SIGMA_REL_MAX:
        raise ValueError(f"sigma_rel {sigma_rel} outside (0, {SIGMA_REL_MAX:.4f}]")
    lo, hi = 0.0, 1.0
    while sigma_rel_of(hi) > sigma_rel:  # sigma_rel ~ gamma^-1 for large gamma
        lo, hi = hi, hi * 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if sigma_rel_of(mid) > sigma_rel:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * hi:
            break
    return 0.5 * (lo + hi)


def power_beta(gamma: float, cur_nimg: int, images_per_step: int) -> float:
    """Decay of a power-function EMA for the step that ends at `cur_nimg` images (eq. 127)."""
    return max(0.0, 1.0 - images_per_step / cur_nimg) ** (gamma + 1)


Times = np.ndarray | np.float64  # image counts or exponents, float64, broadcast together


def profile_inner(t_a: Times, g_a: Times, t_b: Times, g_b: Times) -> np.ndarray:
    """<p_a, p_b> for power-function profiles p(tau) = (g + 1) tau^g / t^(g + 1) on [0, t]
    (eq. 151): the integral over [0, min(t_a, t_b)], written with ratios <= 1 so that it stays
    finite for large exponents and image counts. Broadcasts."""
    t_min = np.minimum(t_a, t_b)
    return np.asarray((g_a + 1) * (g_b + 1) / (g_a + g_b + 1) * (t_min / t_a) ** (g_a + 1) * (t_min / t_b) ** (g_b + 1) / t_min)


def posthoc_coefficients(nimgs: Sequence[int], sigma_rels: Sequence[float], nimg: int, sigma_rel: float) -> np.ndarray:
    """Weights x, one per snapshot (taken at nimgs[i] with profile sigma_rels[i]), such that
    sum_i x_i p_i is the least-squares fit to the profile of `sigma_rel` ending at `nimg`:
    the normal equations A x = b with A the snapshots' Gram matrix, b their inner products with
    the target (algorithm 3). lstsq, since A of many close snapshots is nearly singular; the
    weights are then scaled to sum to 1 so the result is an average of weights."""
    A, b, _ = normal_equations(nimgs, sigma_rels, nimg, sigma_rel)
    x = np.linalg.lstsq(A, b, rcond=None)[0]
    return np.asarray(x / x.sum())


def normal_equations(
    nimgs: Sequence[int], sigma_rels: Sequence[float], nimg: int, sigma_rel: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """(A, b, c): the snapshots' Gram matrix, their inner products with the target, and the target's own."""
    t = np.asarray(nimgs, dtype=np.float64)
    g = np.asarray([gamma_of(s) for s in sigma_rels], dtype=np.float64)
    t_out, g_out = np.float64(nimg), np.float64(gamma_of(sigma_rel))
    A = profile_inner(t[:, None], g[:, None], t[None, :], g[None, :])
    return A, profile_inner(t, g, t_out, g_out), float(profile_inner(t_out, g_out, t_out, g_out))


def fit_error(nimgs: Sequence[int], sigma_rels: Sequence[float], nimg: int, sigma_rel: float, x: np.ndarray) -> float:
    """||sum_i x_i p_i - p|| / ||p||: how well weights `x` of the snapshots' profiles match the target's."""
    A, b, c = normal_equations(nimgs, sigma_rels, nimg, sigma_rel)
    return math.sqrt(max(float(x @ A @ x - 2 * x @ b + c), 0.0) / c)


class PowerEMAs:
    """The tracked profiles, one row each of `flat`; empty (no rows, no work) when off."""

    def __init__(self, G: nn.Module, sigma_rels: Sequence[float], *, images_per_step: int) -> None:
        self.sigma_rels = tuple(float(s) for s in sigma_rels)
        self.gammas = [gamma_of(s) for s in self.sigma_rels]
        self.images_per_step = images_per_step  # global batch x tricks.d_steps: real images per G step
        params = list(G.parameters())
        self.names = [name for name, _ in G.named_parameters()]
        self.orders = [memory_order(p) for p in params]
        self.shapes = [tuple(p.shape) for p in params]
        numel = sum(p.numel() for p in params)
        device = params[0].device if params else torch.device("cpu")
        self.flat = torch.zeros(len(self.sigma_rels), numel, device=device)
        self.moved = torch.zeros_like(self.flat)  # scratch: K lerps write here, one `where` picks

    @classmethod
    def off(cls) -> PowerEMAs:
        """No profiles: `update` does nothing and checkpoints hold nothing of it."""
        return cls(nn.Module(), (), images_per_step=1)

    @torch.no_grad()
    def update(self, G: nn.Module, skipped: torch.Tensor, cur_nimg: int) -> None:
        """Move every profile towards G for the step that ended at `cur_nimg`; `skipped` (0-dim
        float, on device) is 1.0 when G's step was skipped, and then nothing moves. No host sync."""
        if not self.sigma_rels:
            return
        target = torch.cat([in_memory_order(p, o) for p, o in zip(G.parameters(), self.orders, strict=True)])
        for k, gamma in enumerate(self.gammas):
            torch.lerp(self.flat[k], target, 1.0 - power_beta(gamma, cur_nimg, self.images_per_step), out=self.moved[k])
        torch.where(skipped.bool(), self.flat, self.moved, out=self.flat)

    def weights(self, k: int) -> dict[str, torch.Tensor]:
        """Profile k as G's parameters by name: contiguous copies on the CPU, in logical layout."""
        out, offset = {}, 0
        for name, order, shape in zip(self.names, self.orders, self.shapes, strict=True):
            numel = math.prod(shape)
            stored = self.flat[k, offset : offset + numel].view([shape[d] for d in order])
            out[name] = stored.permute([order.index(d) for d in range(len(shape))]).to("cpu", copy=True).contiguous()
            offset += numel
        return out

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps ({} when off, so checkpoints of runs without it are unchanged)."""
        if not self.sigma_rels:
            return {}
        return {"sigma_rels": list(self.sigma_rels), "flat": self.flat}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        assert tuple(state["sigma_rels"]) == self.sigma_rels, "the resume rules refuse a change of train.phema_sigma_rels"
        self.flat.copy_(state["flat"])
