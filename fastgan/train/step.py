"""The GAN step: D phase(s) on real batches, then a G phase. Nothing here reads a device value.

`GANStep.__call__` is the one step function: the training loop, `fastgan bench`, the
benchmarks and the multi-process tests all call it, so every fix lands in one place. Every
trick is chosen when the step is built (fastgan.train.build): the step calls them
unconditionally. G and D are the prepared (DDP-wrapped, maybe compiled) modules; the plain
modules are kept for checkpoints and G_ema.

Model work runs inside `record_function` ranges named `model:...`, so that `fastgan bench`
can count the kernel launches the step makes outside G and D (fastgan.bench.launches).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.profiler import record_function

from fastgan.augment import Augment
from fastgan.latents import draw_latents
from fastgan.losses import GANLoss, Penalty, PenaltyInputs
from fastgan.stats import DeviceStats
from fastgan.train.ema import EMA
from fastgan.train.lazy_reg import RegBatch
from fastgan.train.tricks import Targets, add_instance_noise, instance_noise_std

# What each phase adds to the device stats, in order (skipped: non-finite gradients, step not
# taken; nonfinite_loss: the loss itself was inf/NaN, so not an fp16 overflow but divergence)
D_STATS = ("loss_D", "penalty_D", "gnorm_D", "D_real", "D_gen", "skipped_D", "nonfinite_loss_D")
G_STATS = ("loss_G", "gnorm_G", "skipped_G", "nonfinite_loss_G")

Scorer = Callable[[Callable[..., Tensor], Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]
Batch = tuple[Tensor, Tensor]  # uint8 images [B, C, H, W] and int64 labels [B], on the device


def score_separate(D: Callable[..., Tensor], real: Tensor, real_labels: Tensor, gen: Tensor, gen_labels: Tensor) -> tuple[Tensor, Tensor]:
    """Two D forwards: real and generated batches keep their own BatchNorm statistics (ganhacks #4)."""
    return D(real, real_labels), D(gen, gen_labels)


def score_concat(D: Callable[..., Tensor], real: Tensor, real_labels: Tensor, gen: Tensor, gen_labels: Tensor) -> tuple[Tensor, Tensor]:
    """One D forward on [real; generated]: one launch sequence, BatchNorm sees the mixed batch."""
    logits = D(torch.cat([real, gen.to(real.dtype)]), torch.cat([real_labels, gen_labels]))
    return logits.chunk(2)  # type: ignore[return-value]


Objective = Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


def d_objective(loss: GANLoss) -> Objective:
    """D's loss and its mean scores [D(x), D(G(z))] as probabilities, in one function, so that
    with `train.compile` on, build.py compiles it and the eager math becomes one or two kernels."""

    def objective(real_logits: Tensor, gen_logits: Tensor, real_target: Tensor, gen_target: Tensor) -> tuple[Tensor, Tensor]:
        scores = torch.sigmoid(torch.stack([real_logits.detach(), gen_logits.detach()]).float()).mean(1)
        return loss.d_loss(real_logits, gen_logits, real_target, gen_target), scores

    return objective


def to_signed_unit(images: Tensor, minus_one: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1] on the device (ganhacks #1: tanh range), as one kernel:
    -1 + x / 127.5, with `minus_one` a 0-dim float tensor (it sets the result's dtype)."""
    return torch.add(minus_one, images, alpha=1 / 127.5)


@dataclass
class Net:
    """One network and what trains it; `module` is plain (what checkpoints save), `run` is what
    the step calls (DDP-wrapped and/or compiled)."""

    name: str  # "G" or "D": names the profiler ranges
    module: nn.Module
    run: Callable[..., Tensor]
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler  # its own loss scale (disabled outside fp16)
    no_sync: Callable[[], AbstractContextManager[None]]  # suspends DDP's gradient all-reduce
    eager: Callable[..., Tensor] | None = None  # DDP-wrapped but never compiled (double backward); default: run

    def __post_init__(self) -> None:
        self.zero = torch.zeros((), device=next(self.module.parameters()).device)
        if self.eager is None:
            self.eager = self.run

    def input_grad(self, output_sum: Tensor, inputs: Tensor) -> Tensor:
        """d output_sum / d inputs, kept differentiable (for gradient penalties).

        Under fp16 the unscaled input gradients underflow, so this follows PyTorch's AMP
        gradient-penalty recipe: scale, grad, unscale. The scale stays a device tensor (no
        host sync, unlike `get_scale()`).
        """
        if not self.scaler.is_enabled():
            (grad,) = torch.autograd.grad(output_sum, inputs, create_graph=True)
            return grad
        (grad,) = torch.autograd.grad(self.scaler.scale(output_sum), inputs, create_graph=True)
        scale = self.scaler._get_scale_async()
        assert scale is not None  # scale() above created it
        return grad / scale

    def backward_step(self, loss: Tensor) -> tuple[Tensor, Tensor]:
        """Backward, then a step that is skipped on inf/NaN gradients in every precision.

        Returns (grad norm, flags) as device tensors; flags is float [2]: 1.0 where the step was
        skipped (non-finite gradients) and where the loss itself was non-finite (the cause:
        divergence rather than an fp16 overflow). fp16: the GradScaler skips and backs off.
        Otherwise the scaler is a no-op, so the skip is made here: fused Adam takes a
        `found_inf` tensor, the same one GradScaler hands it, and skips on the device.
        """
        self.opt.zero_grad(set_to_none=True)
        with record_function(f"model:{self.name}.backward"):
            self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)  # true gradients for the norm; step() knows it is done
        grads = [p.grad for p in self.module.parameters() if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads)  # read-only: the gradients are not clipped
        checked = torch.stack([norm, loss.detach().float()])
        flags = checked.sub(checked).ne_(self.zero)  # x - x is NaN exactly where x is inf or NaN: one pass for both
        if self.scaler.is_enabled():
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.found_inf = flags[0]  # type: ignore[attr-defined]
            self.opt.step()
            del self.opt.found_inf  # type: ignore[attr-defined]
        return norm, flags


@dataclass
class GANStep:
    G: Net
    D: Net
    G_ema: nn.Module
    loss: GANLoss
    d_objective: Objective  # d_objective(loss), maybe compiled
    g_objective: Callable[[Tensor, Tensor], Tensor]  # loss.g_loss(gen_logits, real_logits), maybe compiled
    penalties: list[Penalty]  # added to every D step's loss
    needs_real_grad: bool  # R1 in every D step differentiates D(real) with respect to the real images
    needs_gen_grad: bool  # R2 in every D step: the same for the generated images
    regularize: Callable[[int, RegBatch], None]  # lazy R1/R2 (fastgan.train.lazy_reg), or a no-op
    augment: Augment  # every image D sees, both phases (fastgan.augment), or the identity
    g_uses_real: bool  # the G loss is relativistic: D scores the last D phase's real batch again
    targets: Targets
    score: Scorer
    autocast: Callable[[], AbstractContextManager[None]]
    ema: EMA
    stats: DeviceStats
    z_dim: int
    latent: str  # "gaussian" | "uniform" (fastgan.latents)
    num_classes: int
    device: torch.device
    latent_gen: torch.Generator  # seeded alike on every process
    rank: int
    world: int
    batch: int  # per process
    d_steps: int  # D phases per step, each on a fresh real batch
    reuse_d_latents: bool  # tricks.g_latents == "reuse": the G phase takes the last D phase's z
    noise_std: float  # instance noise at the start, decayed linearly to 0 over noise_images
    noise_images: int

    def __post_init__(self) -> None:
        self.minus_one = torch.full((), -1.0, device=self.device)
        self.zero = torch.zeros((), device=self.device)
        self.no_labels = torch.zeros(self.batch, dtype=torch.long, device=self.device)  # unconditional models
        # chosen here, once: the G phase calls whichever the loss needs
        self.g_real_logits = self.score_real_again if self.g_uses_real else self.no_real_logits
        self.last_real: Batch | None = None  # the last D phase's real batch, for relativistic G losses
        self.last_latents: tuple[Tensor, Tensor] | None = None  # the last D phase's z and labels
        self.g_latents = self.d_phase_latents if self.reuse_d_latents else self.latents

    def __call__(self, data: Iterator[Batch], cur_nimg: int) -> int:
        """One training step: `d_steps` D phases, then one G phase. Returns images seen after it."""
        # CUDA graphs (compile mode reduce-overhead): the outputs of every graph replayed in this
        # step stay valid until the next mark; without it a new replay can free G's output
        # before D reads it. A no-op without CUDA graphs.
        torch.compiler.cudagraph_mark_step_begin()
        for _ in range(self.d_steps):
            real_img, real_labels = next(data)
            reg_batch = self.d_phase(real_img, real_labels, instance_noise_std(self.noise_std, self.noise_images, cur_nimg))
            cur_nimg += self.batch * self.world
            self.regularize(cur_nimg, reg_batch)  # lazy R1/R2 every loss.reg_every D steps; else nothing
        self.g_phase(cur_nimg)
        return cur_nimg

    def latents(self) -> tuple[Tensor, Tensor]:
        """z and uniform labels for this process's batch.

        Every process draws the whole global batch from the same generator and keeps its own
        slice: latents differ across processes, and a run gives the same z whatever the
        process count (the cost is world x a few hundred random numbers).
        """
        total, start = self.batch * self.world, self.batch * self.rank
        z = draw_latents(self.latent, total, self.z_dim, generator=self.latent_gen)[start : start + self.batch]
        if self.num_classes == 1:  # a config constant: unconditional models need no random labels
            return z, self.no_labels
        labels = torch.randint(0, self.num_classes, (total,), device=self.device, generator=self.latent_gen)
        return z, labels[start : start + self.batch]

    def d_phase_latents(self) -> tuple[Tensor, Tensor]:
        assert self.last_latents is not None, "a G phase needs a D phase before it"
        return self.last_latents

    def augmented_D(self, images: Tensor, labels: Tensor) -> Tensor:
        """D as the penalties see it: the same augmentation as the D phase (a fresh draw)."""
        return self.D.run(self.augment(images), labels)

    def d_phase(self, real_img: Tensor, real_labels: Tensor, noise_std: float) -> RegBatch:
        z, gen_labels = self.last_latents = self.latents()
        with torch.no_grad(), self.autocast(), record_function("model:G.forward"):
            # a copy in fp32: under CUDA graphs G's output lives in the graph pool and must not
            # be held across D's replays; under autocast it is bf16/fp16 and D wants fp32 input
            gen = self.G.run(z, gen_labels).to(torch.float32, copy=True)
        self.last_real = (real_img, real_labels)
        real = add_instance_noise(to_signed_unit(real_img, self.minus_one), noise_std).requires_grad_(self.needs_real_grad)
        gen = add_instance_noise(gen, noise_std).requires_grad_(self.needs_gen_grad)
        with self.autocast():
            with record_function("model:D.forward"):
                real_logits, gen_logits = self.score(self.D.run, self.augment(real), real_labels, self.augment(gen), gen_labels)
            loss, scores = self.d_objective(real_logits, gen_logits, *self.targets(self.batch))
            inputs = PenaltyInputs(self.augmented_D, real, real_logits, gen, gen_logits, real_labels, gen_labels, self.D.input_grad)
            with record_function("model:D.penalty"):
                penalty = sum((p(inputs) for p in self.penalties), self.zero)
        norm, flags = self.D.backward_step(loss + penalty if self.penalties else loss)
        self.stats.add("D", D_STATS, torch.cat([loss.detach().view(1), penalty.detach().view(1), norm.view(1), scores, flags]))
        self.augment.observe(real_logits)  # ADA: E[sign(D(real))] on the device; else nothing
        return RegBatch(real, real_labels, gen, gen_labels)

    def score_real_again(self) -> Tensor:
        """D's logits on the last D phase's real batch, by the current D, without gradients
        (they do not depend on G): R3GAN's G loss pairs them with D(G(z))."""
        assert self.last_real is not None, "a G phase needs a D phase before it"
        real_img, real_labels = self.last_real
        with torch.no_grad():
            return self.D.run(self.augment(to_signed_unit(real_img, self.minus_one)), real_labels)

    def no_real_logits(self) -> Tensor:
        return self.zero  # losses without g_uses_real ignore it

    def g_phase(self, cur_nimg: int) -> None:
        z, gen_labels = self.g_latents()
        # D's parameters take no gradient in this phase, and DDP does not all-reduce them.
        self.D.module.requires_grad_(False)
        with self.D.no_sync(), self.autocast():
            with record_function("model:G.forward"):
                gen = self.G.run(z, gen_labels)
            with record_function("model:D.forward"):
                gen_logits = self.D.run(self.augment(gen), gen_labels)
                real_logits = self.g_real_logits()
            loss = self.g_objective(gen_logits, real_logits)
        norm, flags = self.G.backward_step(loss)
        self.D.module.requires_grad_(True)
        self.ema.update(self.G.module, flags[0], cur_nimg)  # a true no-op when G's step was skipped
        self.stats.add("G", G_STATS, torch.cat([loss.detach().float().view(1), norm.view(1), flags]))
