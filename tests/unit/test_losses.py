"""Each loss against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from fastgan.config import AdamConfig, LossConfig
from fastgan.losses import LOSSES
from fastgan.losses.penalties import PenaltyInputs, gradient_penalty, r1_penalty, r2_penalty
from fastgan.losses.plan import regularisation_plan
from fastgan.train.tricks import Targets, instance_noise_std

real = torch.tensor([2.0, -1.0])
gen = torch.tensor([0.5, -3.0])
ones, zeros = torch.ones(2), torch.zeros(2)


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_bce_d_loss_is_minus_log_likelihood() -> None:
    expected = -(math.log(sig(2)) + math.log(sig(-1))) / 2 - (math.log(1 - sig(0.5)) + math.log(1 - sig(-3))) / 2
    for name in ("minimax", "nonsaturating"):
        assert LOSSES[name].d_loss(real, gen, ones, zeros).item() == pytest.approx(expected, rel=1e-6)


def test_minimax_and_nonsaturating_g_losses() -> None:
    minimax = (math.log(1 - sig(0.5)) + math.log(1 - sig(-3))) / 2
    nonsat = -(math.log(sig(0.5)) + math.log(sig(-3))) / 2
    assert LOSSES["minimax"].g_loss(gen, real).item() == pytest.approx(minimax, rel=1e-6)
    assert LOSSES["nonsaturating"].g_loss(gen, real).item() == pytest.approx(nonsat, rel=1e-6)


def test_hinge() -> None:
    d = (max(0, 1 - 2) + max(0, 1 + 1)) / 2 + (max(0, 1 + 0.5) + max(0, 1 - 3)) / 2
    assert LOSSES["hinge"].d_loss(real, gen, ones, zeros).item() == pytest.approx(d)
    assert LOSSES["hinge"].g_loss(gen, real).item() == pytest.approx(-(0.5 - 3) / 2)


def test_lsgan() -> None:
    d = 0.5 * ((2 - 1) ** 2 + (-1 - 1) ** 2) / 2 + 0.5 * (0.5**2 + 3**2) / 2
    assert LOSSES["lsgan"].d_loss(real, gen, ones, zeros).item() == pytest.approx(d)
    assert LOSSES["lsgan"].g_loss(gen, real).item() == pytest.approx(0.5 * ((0.5 - 1) ** 2 + (-3 - 1) ** 2) / 2)


def test_wasserstein() -> None:
    assert LOSSES["wgan-gp"].d_loss(real, gen, ones, zeros).item() == pytest.approx((0.5 - 3) / 2 - (2 - 1) / 2)


def test_rpgan_pairs_each_real_with_its_generated() -> None:
    """D: mean softplus(-(D(x_i) - D(G(z_i)))); G: mean softplus(-(D(G(z_i)) - D(x_i)))."""

    def softplus(x: float) -> float:
        return math.log1p(math.exp(x))

    d = (softplus(-(2 - 0.5)) + softplus(-(-1 + 3))) / 2
    g = (softplus(-(0.5 - 2)) + softplus(-(-3 + 1))) / 2
    assert LOSSES["rpgan"].d_loss(real, gen, ones, zeros).item() == pytest.approx(d, rel=1e-6)
    assert LOSSES["rpgan"].g_loss(gen, real).item() == pytest.approx(g, rel=1e-6)
    assert LOSSES["rpgan"].g_uses_real and not LOSSES["nonsaturating"].g_uses_real
    # a shift of every logit changes nothing: only differences count
    assert LOSSES["rpgan"].d_loss(real + 5, gen + 5, ones, zeros).item() == pytest.approx(d, rel=1e-6)


def test_other_g_losses_ignore_real_logits() -> None:
    for name in ("minimax", "nonsaturating", "hinge", "lsgan", "wgan-gp"):
        assert LOSSES[name].g_loss(gen, real).item() == LOSSES[name].g_loss(gen, real * 100).item()


def test_smoothed_target_changes_bce() -> None:
    smooth = torch.full((2,), 0.9)
    expected = -sum(0.9 * math.log(sig(x)) + 0.1 * math.log(1 - sig(x)) for x in (2, -1)) / 2
    expected += -(math.log(1 - sig(0.5)) + math.log(1 - sig(-3))) / 2
    assert LOSSES["nonsaturating"].d_loss(real, gen, smooth, zeros).item() == pytest.approx(expected, rel=1e-6)


class Linear(torch.nn.Module):
    """D(x) = sum(w * x): its input gradient is w, so the penalties are known in closed form."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = w

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)


def plain_input_grad(output_sum: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    (grad,) = torch.autograd.grad(output_sum, inputs, create_graph=True)
    return grad


def penalty_inputs(D: torch.nn.Module, real: torch.Tensor, gen: torch.Tensor, labels: torch.Tensor) -> PenaltyInputs:
    return PenaltyInputs(
        D=D, real=real, real_logits=D(real, labels), gen=gen, gen_logits=D(gen, labels),
        real_labels=labels, gen_labels=labels, input_grad=plain_input_grad,
    )  # fmt: skip


def test_r1_and_gradient_penalty_closed_form() -> None:
    w = torch.full((1, 2, 2), 3.0)  # ||w||^2 = 36, ||w|| = 6
    D = Linear(w)
    x = torch.randn(4, 1, 2, 2, requires_grad=True)
    labels = torch.zeros(4, dtype=torch.long)
    r1 = r1_penalty(gamma=2.0)(penalty_inputs(D, x, torch.randn(4, 1, 2, 2), labels))
    assert r1.item() == pytest.approx(0.5 * 2.0 * 36)
    gp = gradient_penalty(weight=10.0)(penalty_inputs(D, x, torch.randn(4, 1, 2, 2), labels))
    assert gp.item() == pytest.approx(10.0 * (6 - 1) ** 2)


def test_r2_closed_form_and_its_inputs() -> None:
    """R2 differentiates D at the generated images: ||w||^2 for a linear D, like R1 at the real ones."""
    w = torch.full((1, 2, 2), 3.0)
    D = Linear(w)
    gen = torch.randn(4, 1, 2, 2, requires_grad=True)
    labels = torch.zeros(4, dtype=torch.long)
    r2 = r2_penalty(gamma=0.5)(penalty_inputs(D, torch.randn(4, 1, 2, 2), gen, labels))
    assert r2.item() == pytest.approx(0.5 * 0.5 * 36)


def test_r1_and_r2_on_a_quadratic_D() -> None:
    """D(x) = sum(x^2): grad = 2x, so R1 = gamma/2 * mean ||2x||^2, by hand."""

    class Square(torch.nn.Module):
        def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            return x.square().flatten(1).sum(1)

    x = torch.tensor([[[[1.0, 2.0]]], [[[0.0, -1.0]]]], requires_grad=True)  # ||2x||^2 = 20 and 4
    y = torch.tensor([[[[3.0, 0.0]]], [[[0.0, 0.0]]]], requires_grad=True)  # 36 and 0
    inputs = penalty_inputs(Square(), x, y, torch.zeros(2, dtype=torch.long))
    assert r1_penalty(gamma=2.0)(inputs).item() == pytest.approx(1.0 * (20 + 4) / 2)
    assert r2_penalty(gamma=2.0)(inputs).item() == pytest.approx(1.0 * (36 + 0) / 2)


def test_the_regularisation_plan_decides_in_step_or_lazy_once() -> None:
    every_step = regularisation_plan(LossConfig(name="rpgan", r1_gamma=1.0, r2_gamma=1.0, reg_every=1))
    assert len(every_step.in_step) == 2 and not every_step.lazy and every_step.every == 1  # in every D step
    assert every_step.needs_real_grad and every_step.needs_gen_grad and not every_step.compile_ok
    lazy = regularisation_plan(LossConfig(name="rpgan", r1_gamma=1.0, r2_gamma=1.0, reg_every=16))
    assert lazy.in_step == () and len(lazy.lazy) == 2 and lazy.every == 16  # lazy: fastgan.train.lazy_reg
    assert not lazy.needs_real_grad and lazy.compile_ok
    wgan = regularisation_plan(LossConfig(name="wgan-gp", r1_gamma=1.0, reg_every=16))
    assert len(wgan.in_step) == 1 and len(wgan.lazy) == 1 and not wgan.compile_ok  # WGAN-GP keeps its per-step penalty
    none = regularisation_plan(LossConfig(reg_every=16))  # no R1/R2: nothing is lazy, Adam is not adjusted
    assert none.every == 1 and none.adam("D", AdamConfig(lr=1e-3)) == (1e-3, (0.5, 0.999))
    assert lazy.adam("G", AdamConfig(lr=1e-3)) == (1e-3, (0.5, 0.999))  # G is never regularised lazily
    lr, (b1, b2) = lazy.adam("D", AdamConfig(lr=1e-3, betas=(0.0, 0.99)))
    assert lr == pytest.approx(1e-3 * 16 / 17) and b1 == 0.0 and b2 == pytest.approx(0.99 ** (16 / 17))


def test_targets_smoothing_and_flips() -> None:
    real_t, gen_t = Targets(smoothing=0.1, flip=0.0, device=torch.device("cpu"))(1000)
    assert torch.all(real_t == 0.9) and torch.all(gen_t == 0)
    torch.manual_seed(0)
    real_t, gen_t = Targets(smoothing=0.0, flip=0.25, device=torch.device("cpu"))(10_000)
    flipped = (real_t == 0).float().mean().item()
    assert 0.22 < flipped < 0.28
    assert torch.all(real_t + gen_t == 1)  # a flip swaps, never duplicates


def test_instance_noise_decays_linearly() -> None:
    assert instance_noise_std(0.1, 1000, 0) == pytest.approx(0.1)
    assert instance_noise_std(0.1, 1000, 500) == pytest.approx(0.05)
    assert instance_noise_std(0.1, 1000, 2000) == 0.0
    assert instance_noise_std(0.0, 1000, 0) == 0.0
