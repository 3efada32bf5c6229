"""DiffAugment ops and ADA's p (fastgan.augment), alone and inside the step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fastgan.augment import ADJUST_EVERY, AdaptiveAugment, DiffAugment, NoAugment, build_augment
from fastgan.augment.ops import OPS, color, cutout, translation
from fastgan.config import AugmentConfig, load_config
from fastgan.errors import UsageError
from fastgan.run.resume import restore, save_checkpoint
from fastgan.stats import DeviceStats
from fastgan.validate import validate
from tests.support import make

ALL = "color,translation,cutout"
ON, OFF = torch.ones(4), torch.zeros(4)


@pytest.mark.parametrize("name", list(OPS))
def test_each_op_is_the_identity_where_not_applied_and_keeps_shapes(name: str) -> None:
    x = torch.rand(4, 3, 28, 28) * 2 - 1
    torch.testing.assert_close(OPS[name](x, OFF), x, rtol=0, atol=1e-6)  # exact but for (x - m) + m rounding
    assert OPS[name](x, ON).shape == x.shape


def test_translation_moves_content_by_at_most_an_eighth() -> None:
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 14, 14] = 1.0  # one bright pixel in the middle
    y = translation(x, torch.ones(64))
    where = y.flatten(1).argmax(1)
    rows, cols = where // 28, where % 28
    assert y.flatten(1).sum(1).eq(1).all()  # moved, never lost (the shift is at most 4 px, the pixel 14 from the edge)
    assert (rows - 14).abs().max() <= 4 and (cols - 14).abs().max() <= 4
    assert ((rows != 14) | (cols != 14)).any()  # and some did move


def test_cutout_erases_one_square_of_half_the_side() -> None:
    x = torch.ones(32, 1, 28, 28)
    y = cutout(x, torch.ones(32))
    erased = (y == 0).flatten(1).sum(1)
    assert erased.max() == 14 * 14 and erased.min() > 0  # whole squares inside, clipped ones at the edges
    assert torch.equal(cutout(x, torch.zeros(32)), x)


def test_color_brightness_and_contrast_on_grey() -> None:
    torch.manual_seed(0)
    x = torch.rand(256, 1, 8, 8) * 2 - 1
    y = color(x, torch.ones(256))
    shift = (y - x).mean(dim=(1, 2, 3))
    assert shift.abs().max() <= 0.5 + 1e-5 and shift.std() > 0.1  # brightness: per image, up to +-0.5


def test_gradients_flow_through_the_augmentation_twice() -> None:
    """G learns through D(aug(G(z))), and R1/R2 differentiate through it again."""
    aug = DiffAugment([OPS[n] for n in ALL.split(",")], 1.0, torch.device("cpu"))
    x = torch.rand(8, 3, 16, 16, requires_grad=True)
    w = torch.randn(3, 16, 16)
    (grad,) = torch.autograd.grad((aug(x) * w).sum().square(), x, create_graph=True)
    assert grad.abs().sum() > 0
    (second,) = torch.autograd.grad(grad.square().sum(), x)
    assert torch.isfinite(second).all() and second.abs().sum() > 0


def test_p_is_drawn_per_image() -> None:
    torch.manual_seed(0)
    aug = DiffAugment([OPS["cutout"]], 0.5, torch.device("cpu"))
    y = aug(torch.ones(1000, 1, 8, 8))
    touched = (y == 0).flatten(1).any(1).float().mean().item()
    assert 0.45 < touched < 0.55


def adaptive(target: float, p: float = 0.5) -> AdaptiveAugment:
    cfg = AugmentConfig(policy="translation", p=p, target=target, speed_images=1000)
    aug = build_augment(cfg, device=torch.device("cpu"), images_per_step=10, reduce_sum=lambda x: x, stats=DeviceStats())
    assert isinstance(aug, AdaptiveAugment)
    return aug


def test_ada_raises_p_when_D_overfits_and_lowers_it_when_not() -> None:
    """r = E[sign(D(real))]: near 1 means D is sure of every real image (overfitting) -> more augmentation.
    `observe` only sums; `adjust` (its all-reduce) moves p every ADJUST_EVERY D steps."""
    step = ADJUST_EVERY * 10 / 1000  # images since the last adjustment / speed_images
    sure = adaptive(0.6)
    for _ in range(ADJUST_EVERY):
        sure.observe(torch.full((10,), 3.0))  # r = 1 > 0.6
        sure.adjust()  # what the step calls after each D phase
    assert sure.p.item() == pytest.approx(0.5 + step)
    unsure = adaptive(0.6)
    for _ in range(ADJUST_EVERY):
        unsure.observe(torch.tensor([1.0, -1.0] * 5))  # r = 0 < 0.6
        unsure.adjust()  # what the step calls after each D phase
    assert unsure.p.item() == pytest.approx(0.5 - step)
    floor = adaptive(0.6, p=0.0)
    for _ in range(ADJUST_EVERY * 3):
        floor.observe(-torch.ones(10))
        floor.adjust()  # what the step calls after each D phase
    assert floor.p.item() == 0.0  # clamped
    before = sure.p.item()
    for _ in range(ADJUST_EVERY - 1):
        sure.observe(torch.ones(10))
        sure.adjust()  # what the step calls after each D phase
    assert sure.p.item() == before  # only every ADJUST_EVERY D steps


class Recorder:
    """Wraps an augmentation; remembers what it returned."""

    def __init__(self, inner: DiffAugment) -> None:
        self.inner, self.outputs = inner, []  # type: ignore[var-annotated]

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        out = self.inner(images)
        self.outputs.append(out)
        return out

    def observe(self, real_logits: torch.Tensor) -> None:
        self.inner.observe(real_logits)

    def adjust(self) -> None:
        self.inner.adjust()


def test_every_image_D_sees_goes_through_the_same_augmentation(tiny_config: Path) -> None:
    trainer = make(tiny_config, "loss.name=rpgan", f"augment.policy={ALL}", "augment.p=0.5")
    s = trainer.step
    rec = Recorder(s.augment)  # type: ignore[arg-type]
    s.augment = rec  # type: ignore[assignment]
    seen: list[torch.Tensor] = []
    D_run = s.D.run
    s.D.run = lambda images, labels: (seen.append(images), D_run(images, labels))[1]
    trainer.train_step(iter(trainer.data))
    assert len(seen) == 4  # D phase: real, generated; G phase: generated, real (relativistic)
    assert all(any(img is out for out in rec.outputs) for img in seen)  # each one an output of the one augmentation


def test_augment_keys_are_checked() -> None:
    with pytest.raises(UsageError, match="unknown op 'flip'"):
        validate(load_config(None, ["augment.policy=color,flip"]))
    with pytest.raises(UsageError, match="augment.p"):
        validate(load_config(None, ["augment.policy=color", "augment.p=1.5"]))
    with pytest.raises(UsageError, match="policy is empty"):
        validate(load_config(None, ["augment.target=0.6"]))
    off = build_augment(AugmentConfig(), device=torch.device("cpu"), images_per_step=1, reduce_sum=lambda x: x, stats=DeviceStats())
    assert isinstance(off, NoAugment)


def test_ada_p_is_logged_and_checkpointed(tiny_config: Path, tmp_path: Path) -> None:
    overrides = ("augment.policy=translation,cutout", "augment.target=0.6", "augment.p=0.0", "augment.speed_images=1000")
    trainer = make(tiny_config, *overrides)
    data = iter(trainer.data)
    for _ in range(ADJUST_EVERY * 2):
        trainer.train_step(data)
    p = trainer.step.augment.p.item()  # type: ignore[attr-defined]
    stats = trainer.step.stats.read(lambda x: x, lambda x: x)
    assert "augment_p" in stats and "augment_rt" in stats
    save_checkpoint(trainer, tmp_path)
    fresh = make(tiny_config, *overrides)
    restore(fresh, tmp_path / "checkpoints" / f"nimg-{trainer.cur_nimg:09d}")
    assert fresh.step.augment.p.item() == p  # type: ignore[attr-defined]
