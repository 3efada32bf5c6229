"""The GAN step: D phase(s) on real batches, then a G phase. Nothing here reads a device value.

`GANStep.__call__` is the one step function: the training loop, `fastgan bench`, the
benchmarks and the multi-process tests all call it, so every fix lands in one place. Every
trick is chosen when the step is built (fastgan.train.build): the step calls them
unconditionally. G and D are the prepared (DDP-wrapped, maybe compiled) networks; the plain
modules are kept for checkpoints and G_ema.

Model work runs inside `record_function` ranges named `model:...`, so that `fastgan bench`
can count the kernel launches the step makes outside G and D (fastgan.bench.launches).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.profiler import record_function

from fastgan.augment import Augment
from fastgan.data.contract import Batch
from fastgan.losses import GANLoss
from fastgan.losses.penalties import PenaltyInputs
from fastgan.losses.plan import RegularisationPlan
from fastgan.stats import DeviceStats
from fastgan.train.ema import EMA
from fastgan.train.generated import KeepGraph, Regenerate
from fastgan.train.latents import LatentSampler
from fastgan.train.lazy_reg import RegBatch
from fastgan.train.nets import Net, micro_batches
from fastgan.train.phema import PowerEMAs
from fastgan.train.tricks import InstanceNoise, Targets

Scorer = Callable[[Callable[..., Tensor], Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


def score_separate(D: Callable[..., Tensor], real: Tensor, real_labels: Tensor, gen: Tensor, gen_labels: Tensor) -> tuple[Tensor, Tensor]:
    """Two D forwards: real and generated batches keep their own BatchNorm statistics (ganhacks #4)."""
    return D(real, real_labels), D(gen, gen_labels)


def score_concat(D: Callable[..., Tensor], real: Tensor, real_labels: Tensor, gen: Tensor, gen_labels: Tensor) -> tuple[Tensor, Tensor]:
    """One D forward on [real; generated]: one launch sequence, BatchNorm sees the mixed batch."""
    logits = D(torch.cat([real, gen.to(real.dtype)]), torch.cat([real_labels, gen_labels]))
    return logits.chunk(2)  # type: ignore[return-value]


DObjective = Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


def d_objective(loss: GANLoss) -> DObjective:
    """D's loss and its mean scores [D(x), D(G(z))] as probabilities, in one function, so that
    with `train.compile` on, build.py compiles it and the eager math becomes one or two kernels."""

    def objective(real_logits: Tensor, gen_logits: Tensor, real_target: Tensor, gen_target: Tensor) -> tuple[Tensor, Tensor]:
        scores = torch.sigmoid(torch.stack([real_logits.detach(), gen_logits.detach()]).float()).mean(1)
        return loss.d_loss(real_logits, gen_logits, real_target, gen_target), scores

    return objective


@dataclass(frozen=True)
class Objectives:
    """The loss as the step calls it, each part maybe compiled (fastgan.train.build)."""

    d: DObjective  # d_objective(loss)
    g: Callable[[Tensor, Tensor], Tensor]  # loss.g_loss(gen_logits, real_logits)
    g_uses_real: bool  # the G loss is relativistic: D scores the last D phase's real batch again


def to_signed_unit(images: Tensor, minus_one: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1] on the device (ganhacks #1: tanh range), as one kernel:
    -1 + x / 127.5, with `minus_one` a 0-dim float tensor (it sets the result's dtype)."""
    return torch.add(minus_one, images, alpha=1 / 127.5)


@dataclass
class GANStep:
    G: Net
    D: Net
    ema: EMA  # G_ema and its update
    latents: LatentSampler  # z and labels for both phases (fresh, or the D phase's reused)
    objective: Objectives
    reg: RegularisationPlan  # the penalties in every D step's loss, and the input gradients they need
    regularize: Callable[[int, RegBatch], None]  # lazy R1/R2 (fastgan.train.lazy_reg), or a no-op
    augment: Augment  # every image D sees, both phases (fastgan.augment), or the identity
    targets: Targets  # D's targets: label smoothing and flips (ganhacks #6)
    noise: InstanceNoise  # on D's inputs, decayed by images seen
    score: Scorer  # separate or concatenated D batches (tricks.d_batches)
    autocast: Callable[[], AbstractContextManager[None]]
    stats: DeviceStats
    d_steps: int  # D phases per step, each on a fresh real batch
    phema: PowerEMAs = field(default_factory=PowerEMAs.off)  # post-hoc EMA's profiles (train.phema_every), or none
    accumulate: int = 1  # micro-batches per phase (train.accumulate): one optimizer step over all of them
    generated: Regenerate | KeepGraph = field(default_factory=Regenerate)  # G's images for each phase (tricks.g_latents)

    def __post_init__(self) -> None:
        device = self.latents.device
        self.batch = self.latents.batch  # per process
        self.images_per_d_step = self.batch * self.latents.world  # global
        self.minus_one = torch.full((), -1.0, device=device)
        self.zero = torch.zeros((), device=device)
        # chosen here, once: the G phase calls whichever the loss needs
        self.g_real_logits = self.score_real_again if self.objective.g_uses_real else self.no_real_logits
        self.last_real: Batch | None = None  # the last D phase's real batch, for relativistic G losses

    @property
    def G_ema(self) -> nn.Module:
        return self.ema.G_ema

    def __call__(self, data: Iterator[Batch], cur_nimg: int) -> int:
        """One training step: `d_steps` D phases, then one G phase. Returns images seen after it."""
        # CUDA graphs (compile mode reduce-overhead): the outputs of every graph replayed in this
        # step stay valid until the next mark; without it a new replay can free G's output
        # before D reads it. A no-op without CUDA graphs.
        torch.compiler.cudagraph_mark_step_begin()
        for _ in range(self.d_steps):
            real_img, real_labels = next(data)
            reg_batch = self.d_phase(real_img, real_labels, self.noise.std_at(cur_nimg))
            cur_nimg += self.images_per_d_step
            self.augment.adjust()  # ADA: p moves every few D steps, after an all-reduce on the device; else nothing
            self.regularize(cur_nimg, reg_batch)  # lazy R1/R2 every loss.reg_every D steps; else nothing
        self.g_phase(cur_nimg)
        return cur_nimg

    def augmented_D(self, images: Tensor, labels: Tensor) -> Tensor:
        """D as the penalties see it: the same augmentation as the D phase (a fresh draw)."""
        return self.D.run(self.augment(images), labels)

    def d_phase(self, real_img: Tensor, real_labels: Tensor, noise_std: float) -> RegBatch:
        z, gen_labels = self.latents.for_D()
        with self.autocast(), record_function("model:G.forward"):
            gen = self.generated.for_D(self.G, z, gen_labels)  # fp32, detached (fastgan.train.generated)
        self.last_real = (real_img, real_labels)
        real = self.noise(to_signed_unit(real_img, self.minus_one), noise_std).requires_grad_(self.reg.needs_real_grad)
        gen = self.noise(gen, noise_std).requires_grad_(self.reg.needs_gen_grad)
        all_real_logits: list[Tensor] = []  # each micro-batch's, for ADA

        def d_loss(real: Tensor, real_labels: Tensor, gen: Tensor, gen_labels: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
            with self.autocast():
                with record_function("model:D.forward"):
                    real_logits, gen_logits = self.score(self.D.run, self.augment(real), real_labels, self.augment(gen), gen_labels)
                loss, scores = self.objective.d(real_logits, gen_logits, *self.targets(real.shape[0]))
                inputs = PenaltyInputs(
                    D=self.augmented_D, real=real, real_logits=real_logits, gen=gen, gen_logits=gen_logits,
                    real_labels=real_labels, gen_labels=gen_labels, input_grad=self.D.input_grad,
                )  # fmt: skip
                with record_function("model:D.penalty"):
                    penalty = sum((p(inputs) for p in self.reg.in_step), self.zero)
            all_real_logits.append(real_logits)
            return (loss + penalty if self.reg.in_step else loss), (loss.detach(), penalty.detach(), scores[0], scores[1])

        parts = micro_batches(self.accumulate, real, real_labels, gen, gen_labels)
        norm, flags, (loss, penalty, d_real, d_gen) = self.D.accumulate_step(d_loss, parts)
        self.stats.add(
            "D", loss_D=loss, penalty_D=penalty, gnorm_D=norm, D_real=d_real, D_gen=d_gen, skipped_D=flags[0], nonfinite_loss_D=flags[1]
        )
        # ADA: sums sign(D(real)) on the device, once per D phase; else nothing
        self.augment.observe(all_real_logits[0] if self.accumulate == 1 else torch.cat(all_real_logits))
        return RegBatch(real, real_labels, gen, gen_labels)

    def score_real_again(self, real_img: Tensor, real_labels: Tensor) -> Tensor:
        """D's logits on (a micro-batch of) the last D phase's real batch, by the current D, without
        gradients (they do not depend on G): R3GAN's G loss pairs them with D(G(z))."""
        with torch.no_grad():
            return self.D.run(self.augment(to_signed_unit(real_img, self.minus_one)), real_labels)

    def no_real_logits(self, real_img: Tensor, real_labels: Tensor) -> Tensor:
        return self.zero  # losses without g_uses_real ignore it

    def g_phase(self, cur_nimg: int) -> None:
        z, gen_labels = self.latents.for_G()
        assert self.last_real is not None, "a G phase needs a D phase before it"

        def g_loss(z: Tensor, gen_labels: Tensor, real_img: Tensor, real_labels: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
            with self.autocast():
                with record_function("model:G.forward"):
                    gen = self.generated.for_G(self.G, z, gen_labels)  # G(z) again, or the D phase's kept
                with record_function("model:D.forward"):
                    gen_logits = self.D.run(self.augment(gen), gen_labels)
                    real_logits = self.g_real_logits(real_img, real_labels)
                loss = self.objective.g(gen_logits, real_logits)
            return loss, (loss.detach(),)

        # D's parameters take no gradient in this phase, and DDP does not all-reduce them.
        with self.D.frozen(), self.D.no_sync():
            norm, flags, (loss,) = self.G.accumulate_step(g_loss, micro_batches(self.accumulate, z, gen_labels, *self.last_real))
        self.ema.update(self.G.module, flags[0], cur_nimg)  # a true no-op when G's step was skipped
        self.phema.update(self.G.module, flags[0], cur_nimg)  # post-hoc EMA's profiles, the same way (or nothing)
        self.stats.add("G", loss_G=loss, gnorm_G=norm, skipped_G=flags[0], nonfinite_loss_G=flags[1])
