"""Schedules (fastgan.train.schedule): the math of a curve, the config checks, that a run without
[schedule] steps exactly as before, and that each scheduled value reaches what it moves."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from fastgan.config import ValueSchedule, load_config
from fastgan.errors import UsageError
from fastgan.losses.penalties import ZeroCentredPenalty
from fastgan.losses.plan import adam_for_lazy
from fastgan.run.resume_rules import check_resume_changes
from fastgan.train.schedule import Curve, curve
from fastgan.validate import validate
from tests.support import REPO, make, params, steps

# ---------------------------------------------------------------------------- the math


def test_warm_up_is_linear_from_zero_to_start() -> None:
    c = Curve(start=2e-4, end=5e-5, warmup_images=1000, length_images=5000)
    assert c(0) == 0.0
    assert c(250) == pytest.approx(0.5e-4)
    assert c(500) == pytest.approx(1e-4)
    assert c(1000) == 2e-4  # the warm-up ends exactly at start, where the decay begins


@pytest.mark.parametrize(("start", "end"), [(2e-4, 5e-5), (0.9, 0.99), (0.0, 5_000_000.0)])
def test_cosine_starts_at_start_ends_at_end_and_is_halfway_in_the_middle(start: float, end: float) -> None:
    c = Curve(start=start, end=end, length_images=20_000_000)
    assert c(0) == start
    assert c(10_000_000) == pytest.approx((start + end) / 2)
    assert c(5_000_000) == pytest.approx(start + (end - start) * (1 - math.cos(math.pi / 4)) / 2)
    assert c(20_000_000) == end
    values = [c(n) for n in range(0, 20_000_001, 1_000_000)]
    assert values == sorted(values, reverse=end < start)  # monotone towards end


def test_the_value_is_held_after_length() -> None:
    for shape in ("cosine", "linear"):
        c = Curve(start=0.05, end=0.005, shape=shape, warmup_images=100, length_images=1000)
        assert c(1000) == c(1001) == c(10**9) == 0.005


def test_linear_is_a_straight_line_after_the_warm_up() -> None:
    c = Curve(start=1.0, end=0.0, shape="linear", warmup_images=100, length_images=1100)
    assert [c(n) for n in (100, 350, 600, 1100)] == pytest.approx([1.0, 0.75, 0.5, 0.0])


def test_constant_holds_start_after_the_warm_up() -> None:
    c = curve(ValueSchedule(shape="constant", warmup_images=10), configured=0.3)
    assert c(5) == pytest.approx(0.15) and c(10) == c(10**9) == 0.3


def test_unset_start_is_the_configured_value_and_unset_end_is_start() -> None:
    c = curve(ValueSchedule(end=5e-5, length_images=100), configured=2e-4)
    assert (c.start, c.end) == (2e-4, 5e-5)
    c = curve(ValueSchedule(start=0.1, length_images=100), configured=2e-4)
    assert c(0) == c(50) == c(100) == 0.1


# ---------------------------------------------------------------------------- config


def test_schedule_keys_are_typed_and_unknown_ones_fail(tiny_config: Path) -> None:
    cfg = load_config(tiny_config, ["schedule.lr_G.end=5e-5", "schedule.lr_G.length_images=20_000_000"])
    assert cfg.schedule.lr_G == ValueSchedule(end=5e-5, length_images=20_000_000)
    with pytest.raises(UsageError, match="unknown key 'schedule.lr_G.stop'"):
        load_config(tiny_config, ["schedule.lr_G.stop=1"])
    with pytest.raises(UsageError, match="unknown key 'schedule.lr'"):
        load_config(tiny_config, ["schedule.lr.end=1"])
    with pytest.raises(UsageError, match="choose one of: cosine, linear, constant"):
        load_config(tiny_config, ["schedule.lr_G.shape=exp"])


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("schedule.r1_gamma.end=0.01", "schedule.r1_gamma.length_images=100"), "needs R1 on"),
        (("schedule.augment_p.end=0.5", "schedule.augment_p.length_images=100"), "needs augmentation on"),
        (("schedule.lr_G.length_images=100",), "needs an end"),
        (("schedule.lr_G.end=1e-5", "schedule.lr_G.length_images=100", "schedule.lr_G.warmup_images=100"), "more than warmup_images"),
        (("schedule.beta2_D.end=1.0", "schedule.beta2_D.length_images=100"), r"in \[0, 1\)"),
        (("schedule.lr_D.shape=constant", "schedule.lr_D.end=1e-5"), "holds start"),
    ],
)
def test_a_schedule_that_cannot_mean_anything_is_refused(tiny_config: Path, sets: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        validate(load_config(tiny_config, list(sets)))


# ---------------------------------------------------------------------------- the step

LAZY = ("loss.r1_gamma=0.1", "loss.reg_every=2")  # lazy R1: D's Adam is adjusted by c = 2/3


def test_without_schedule_a_step_is_exactly_the_plain_step(tiny_config: Path) -> None:
    """The trainer's step (which applies schedules) against GANStep called directly, as before schedules."""
    scheduled, plain = make(tiny_config, *LAZY), make(tiny_config, *LAZY)
    assert scheduled.schedules.curves == {}
    steps(scheduled, 4)
    data = iter(plain.data)
    for _ in range(4):
        plain.cur_nimg = plain.step(data, plain.cur_nimg)
    for net in ("G", "D", "G_ema"):
        a, b = params(getattr(scheduled, net)), params(getattr(plain, net))
        assert all(torch.equal(a[k], b[k]) for k in a), net


def test_constant_schedules_at_the_configured_values_change_nothing(tiny_config: Path) -> None:
    """Every setter writes what build wrote (lazy R1's lr*c and beta**c included), so the weights match bitwise."""
    constant = [f"schedule.{v}.shape=constant" for v in ("lr_G", "lr_D", "beta2_G", "beta2_D", "r1_gamma", "ema_halflife_images")]
    plain, scheduled = make(tiny_config, *LAZY), make(tiny_config, *LAZY, *constant)
    assert len(scheduled.schedules.curves) == 6
    steps(plain, 4)
    steps(scheduled, 4)
    for net in ("G", "D", "G_ema"):
        a, b = params(getattr(plain, net)), params(getattr(scheduled, net))
        assert all(torch.equal(a[k], b[k]) for k in a), net


def test_each_scheduled_value_reaches_what_it_moves(tiny_config: Path) -> None:
    """After each step, what the optimizers, penalty, EMA and augmentation hold is the curve's
    value at the step's first image (tiny_config: 16 images per step)."""

    def cosine(start: float, end: float, nimg: int, length: int) -> float:
        return start + (end - start) * (1 - math.cos(math.pi * min(nimg / length, 1.0))) / 2

    sets = [
        *LAZY, "optim.G.betas=[0.0, 0.9]", "optim.D.betas=[0.0, 0.9]", "augment.policy=translation", "augment.p=0.0",
        "schedule.lr_G.end=5e-5", "schedule.lr_G.length_images=64", "schedule.lr_D.end=5e-5", "schedule.lr_D.length_images=64",
        "schedule.beta2_D.end=0.99", "schedule.beta2_D.length_images=64",
        "schedule.r1_gamma.end=0.01", "schedule.r1_gamma.length_images=64",
        "schedule.ema_halflife_images.start=0", "schedule.ema_halflife_images.end=500", "schedule.ema_halflife_images.length_images=64",
        "schedule.augment_p.end=0.55", "schedule.augment_p.length_images=64",
    ]  # fmt: skip
    trainer = make(tiny_config, *sets)
    (r1,) = [p for p in trainer.step.regularize.penalties if isinstance(p, ZeroCentredPenalty)]  # type: ignore[attr-defined]
    data = iter(trainer.data)
    for _ in range(6):  # past the 64 images: held
        nimg = trainer.cur_nimg
        trainer.train_step(data)
        lr_D, (b1_D, b2_D) = adam_for_lazy(cosine(2e-4, 5e-5, nimg, 64), (0.0, cosine(0.9, 0.99, nimg, 64)), 2)
        assert trainer.step.G.opt.param_groups[0]["lr"] == pytest.approx(cosine(2e-4, 5e-5, nimg, 64), rel=1e-12)
        assert trainer.step.G.opt.param_groups[0]["betas"] == (0.0, 0.9)  # beta2_G not scheduled
        assert trainer.step.D.opt.param_groups[0]["lr"] == pytest.approx(lr_D, rel=1e-12)
        assert trainer.step.D.opt.param_groups[0]["betas"] == pytest.approx((b1_D, b2_D), rel=1e-12)
        assert r1.gamma == pytest.approx(cosine(0.1, 0.01, nimg, 64), rel=1e-12)
        assert trainer.step.ema.half_life == pytest.approx(cosine(0.0, 500.0, nimg, 64), abs=1e-9)
        assert trainer.step.augment.p.item() == pytest.approx(cosine(0.0, 0.55, nimg, 64), rel=1e-6)  # type: ignore[attr-defined]
    assert nimg >= 64 and r1.gamma == 0.01


def test_with_ada_the_schedule_caps_p(tiny_config: Path) -> None:
    """ADA moves p, the schedule is its ceiling: p never exceeds the cap, and where the cap is high ADA moves p freely."""
    ada = ("augment.policy=translation", "augment.p=0.0", "augment.target=0.01", "augment.speed_images=64", "optim.D.lr=1e-2")
    cap = ("schedule.augment_p.start=0.0", "schedule.augment_p.end=0.1", "schedule.augment_p.length_images=1024")
    free, capped = make(tiny_config, *ada), make(tiny_config, *ada, *cap)
    assert set(capped.schedules.curves) == {"augment_p_cap"}
    data_free, data_capped = iter(free.data), iter(capped.data)
    for _ in range(16):
        free.train_step(data_free)
        limit = capped.schedules.values(capped.cur_nimg)["augment_p_cap"]
        capped.train_step(data_capped)
        assert capped.step.augment.p.item() <= limit + 1e-7  # type: ignore[attr-defined]
    assert free.step.augment.p.item() > capped.step.augment.p.item() > 0  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------- resume rules


def test_resume_may_change_optimizer_schedules_but_not_the_others(tiny_config: Path) -> None:
    old = load_config(tiny_config)
    lr = load_config(tiny_config, ["schedule.lr_G.end=1e-5", "schedule.beta2_D.length_images=100"])
    assert set(check_resume_changes(old, lr, tiny_config.parent, "--set")) == {"schedule.lr_G.end", "schedule.beta2_D.length_images"}
    for key in ("r1_gamma", "r2_gamma", "ema_halflife_images", "augment_p"):
        new = load_config(tiny_config, [f"schedule.{key}.end=0.5"])
        with pytest.raises(UsageError, match=f"schedule.{key}.end"):
            check_resume_changes(old, new, tiny_config.parent, "--set")


def test_the_report_groups_scheduled_values() -> None:
    from fastgan.report import plots
    from fastgan.report.runs import Run

    rows = [
        {"nimg": 64 * i, "time_s": 1.0, "train_s": 1.0, "lr_G": 2e-4 - i * 1e-6, "lr_D": 2e-4, "r1_gamma": 0.05, "loss_D": 0.7}
        for i in range(4)
    ]
    run = Run(name="a", path=Path("a"), config={}, rows=rows, warnings=[], evals=[], notes=[], timeline=None, latest_png=None)
    groups, _ = plots.groups_for([run])
    by_title = {g.title: g.keys for g in groups}
    assert by_title["Scheduled learning rates ([schedule])"] == ("lr_G", "lr_D")
    assert by_title["Scheduled R1/R2 weights ([schedule])"] == ("r1_gamma",)
    assert not any(
        k in ("lr_G", "lr_D", "r1_gamma") for g in groups if "Scheduled" not in g.title for k in g.keys
    )  # no figure of their own


def test_the_r3gan_preset_runs_r3gans_schedules_as_docs_schedules_md_shows() -> None:
    """configs/cifar10-r3gan.toml gives R3GAN's CIFAR-10 values at the start, halfway and from
    20M images on, and docs/schedules.md's TOML block is the preset's own."""
    from fastgan.train.schedule import curves

    block = (REPO / "docs" / "schedules.md").read_text().split("```toml\n", 1)[1].split("```", 1)[0]
    assert block.strip() in (REPO / "configs" / "cifar10-r3gan.toml").read_text()
    cfg = load_config(REPO / "configs" / "cifar10-r3gan.toml", [])
    validate(cfg)
    c = curves(cfg)
    want = {  # brownvc/R3GAN train.py, CIFAR10: (start, end)
        "lr_G": (2e-4, 5e-5), "lr_D": (2e-4, 5e-5), "beta2_G": (0.9, 0.99), "beta2_D": (0.9, 0.99),
        "r1_gamma": (0.05, 0.005), "r2_gamma": (0.05, 0.005), "ema_halflife_images": (0, 5e6), "augment_p": (0, 0.55),
    }  # fmt: skip
    assert set(c) == set(want)
    for name, (start, end) in want.items():
        assert (c[name](0), c[name](20_000_000), c[name](50_000_000)) == (start, end, end), name
        assert c[name](10_000_000) == pytest.approx((start + end) / 2), name


def test_moving_values_do_not_recompile_a_compiled_step(tiny_config: Path) -> None:
    """Every scheduled value changes at every step here, with the step compiled: after the first
    step's graphs, nothing compiles again (lr and betas are the optimizer's floats, gamma a host
    float of the eager penalty, p a device tensor filled in place)."""
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    moving = [
        f"schedule.{v}.{k}" for v in ("lr_G", "lr_D", "beta2_D", "r1_gamma", "ema_halflife_images", "augment_p")
        for k in ("start=0.5", "end=0.1", "length_images=400")
    ]  # fmt: skip
    trainer = make(tiny_config, *LAZY, "augment.policy=translation", "train.compile=default", "train.compile_backend=aot_eager", *moving)
    steps(trainer, 1)
    graphs_after_first = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    before = trainer.schedules.values(trainer.cur_nimg)
    steps(trainer, 8)
    assert all(trainer.schedules.values(trainer.cur_nimg)[k] != v for k, v in before.items())  # they did move
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs_after_first
