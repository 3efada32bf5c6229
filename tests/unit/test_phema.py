"""Post-hoc EMA's math (fastgan.train.phema): gamma from sigma_rel and back, the tracking's betas
against the continuous profile, the least-squares weights, and the flat buffer's update."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from fastgan.train.phema import SIGMA_REL_MAX, PowerEMAs, fit_error, gamma_of, posthoc_coefficients, power_beta, sigma_rel_of


@pytest.mark.parametrize("sigma_rel", [0.001, 0.03, 0.05, 0.07, 0.10, 0.15, 0.25, SIGMA_REL_MAX])
def test_gamma_and_sigma_rel_are_inverses(sigma_rel: float) -> None:
    gamma = gamma_of(sigma_rel)
    assert gamma >= 0
    assert sigma_rel_of(gamma) == pytest.approx(sigma_rel, rel=1e-12)
    assert gamma_of(sigma_rel_of(gamma)) == pytest.approx(gamma, rel=1e-9, abs=1e-9)


def test_gamma_matches_the_values_edm2_quotes() -> None:
    """EDM2 (section 3.1): sigma_rel 0.05 is gamma 16.97 and 0.10 is gamma 6.94; gamma 0 is a plain average."""
    assert gamma_of(0.05) == pytest.approx(16.97, abs=0.005)
    assert gamma_of(0.10) == pytest.approx(6.94, abs=0.005)
    assert sigma_rel_of(0.0) == pytest.approx(math.sqrt(1 / 12))
    assert gamma_of(SIGMA_REL_MAX) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("bad", [0.0, -0.1, 0.3, math.nan])
def test_gamma_refuses_sigma_rels_without_a_profile(bad: float) -> None:
    with pytest.raises(ValueError):
        gamma_of(bad)


def test_first_step_forgets_the_initial_value() -> None:
    assert power_beta(gamma_of(0.05), 64, 64) == 0.0
    assert 0 < power_beta(gamma_of(0.05), 128, 64) < power_beta(gamma_of(0.10), 128, 64) < 1


class Scalar(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))


@pytest.mark.parametrize("sigma_rel", [0.05, 0.10, 0.2])
def test_tracking_averages_with_the_power_profile(sigma_rel: float) -> None:
    """G's weight equal to the time t: the profile's mean is t (gamma + 1) / (gamma + 2), its std
    sigma_rel * t (eq. 123), up to the steps' discreteness (1 / number of steps)."""
    G, steps, dt = Scalar(), 2000, 8
    G2 = Scalar()  # its weight is t^2, for the second moment
    ema, ema2 = PowerEMAs(G, [sigma_rel], images_per_step=dt), PowerEMAs(G2, [sigma_rel], images_per_step=dt)
    no = torch.zeros(())
    for i in range(1, steps + 1):
        t = i * dt
        G.w.data.fill_(t / (steps * dt))
        G2.w.data.fill_((t / (steps * dt)) ** 2)
        ema.update(G, no, t)
        ema2.update(G2, no, t)
    mean, second = float(ema.flat[0, 0]), float(ema2.flat[0, 0])
    gamma = gamma_of(sigma_rel)
    assert mean == pytest.approx((gamma + 1) / (gamma + 2), abs=2 / steps)
    assert math.sqrt(second - mean**2) == pytest.approx(sigma_rel, rel=0.02)


def test_a_tracked_profile_is_its_own_reconstruction() -> None:
    nimgs = [100, 200, 300, 400] * 2
    sigmas = [0.05] * 4 + [0.10] * 4
    x = posthoc_coefficients(nimgs, sigmas, 300, 0.10)
    assert np.allclose(x, np.eye(8)[6], atol=1e-6)
    assert fit_error(nimgs, sigmas, 300, 0.10, x) < 1e-6


def test_reconstruction_weights_sum_to_one_and_fit_in_between_profiles() -> None:
    nimgs = [n * 1000 for n in range(1, 41)] * 2
    sigmas = [0.05] * 40 + [0.10] * 40
    x = posthoc_coefficients(nimgs, sigmas, 40_000, 0.07)
    assert x.sum() == pytest.approx(1.0)
    assert fit_error(nimgs, sigmas, 40_000, 0.07, x) < 0.01
    # With only the last two snapshots, the fit is far worse: the error measure can fail.
    last = [39, 79]
    y = posthoc_coefficients([nimgs[i] for i in last], [sigmas[i] for i in last], 40_000, 0.07)
    assert fit_error([nimgs[i] for i in last], [sigmas[i] for i in last], 40_000, 0.07, y) > 10 * fit_error(nimgs, sigmas, 40_000, 0.07, x)


def test_a_skipped_step_leaves_every_profile_exactly_as_it_was() -> None:
    G = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    ema = PowerEMAs(G, [0.05, 0.10], images_per_step=4)
    ema.update(G, torch.zeros(()), 4)
    before = ema.flat.clone()
    with torch.no_grad():
        for p in G.parameters():
            p.fill_(math.nan)
    ema.update(G, torch.ones(()), 8)
    assert torch.equal(ema.flat, before)


def test_snapshot_weights_have_the_parameters_names_and_layouts() -> None:
    """channels_last conv weights are stored in memory order; `weights` gives them back in logical layout."""
    G = nn.Sequential(nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.ConvTranspose2d(5, 2, 4)).to(memory_format=torch.channels_last)
    ema = PowerEMAs(G, [0.07], images_per_step=16)
    ema.update(G, torch.zeros(()), 16)  # beta = 0: the profile is G itself
    weights = ema.weights(0)
    assert list(weights) == [n for n, _ in G.named_parameters()]
    for name, p in G.named_parameters():
        assert weights[name].is_contiguous() and torch.equal(weights[name], p.detach())


def test_off_tracks_nothing_and_saves_nothing() -> None:
    ema = PowerEMAs.off()
    ema.update(nn.Linear(2, 2), torch.zeros(()), 10)
    assert ema.state_dict() == {} and ema.flat.numel() == 0
