"""The GAN step: a D phase on a real batch, then a G phase. Nothing here reads a device value.

Every trick is chosen when the step is built (fastgan.engine.build): the step calls them
unconditionally. Under DDP, G and D are the prepared (wrapped, maybe compiled) modules; the
plain modules are kept for checkpoints and G_ema.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fastgan.engine.ema import EMA
from fastgan.engine.stats import DeviceStats
from fastgan.engine.tricks import Targets, add_instance_noise
from fastgan.losses import GANLoss, Penalty

Scorer = Callable[[Callable[..., Tensor], Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


def score_separate(D: Callable[..., Tensor], real: Tensor, real_labels: Tensor, gen: Tensor, gen_labels: Tensor) -> tuple[Tensor, Tensor]:
    """Two D forwards: real and generated batches keep their own BatchNorm statistics (ganhacks #4)."""
    return D(real, real_labels), D(gen, gen_labels)


def score_concat(D: Callable[..., Tensor], real: Tensor, real_labels: Tensor, gen: Tensor, gen_labels: Tensor) -> tuple[Tensor, Tensor]:
    """One D forward on [real; generated]: one launch sequence, BatchNorm sees the mixed batch."""
    logits = D(torch.cat([real, gen.to(real.dtype)]), torch.cat([real_labels, gen_labels]))
    return logits.chunk(2)  # type: ignore[return-value]


def to_signed_unit(images: Tensor) -> Tensor:
    """uint8 [0, 255] -> float [-1, 1], on the device (ganhacks #1: tanh range)."""
    return images.float().div_(127.5).sub_(1.0)


@dataclass
class Net:
    """One network and what trains it; `module` is plain (what checkpoints save), `run` is what
    the step calls (DDP-wrapped and/or compiled)."""

    module: nn.Module
    run: Callable[..., Tensor]
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler  # its own loss scale (disabled outside fp16)
    no_sync: Callable[[], AbstractContextManager[None]]  # suspends DDP's gradient all-reduce

    def backward_step(self, loss: Tensor) -> tuple[Tensor, Tensor]:
        """Backward, step and scaler update; returns (grad norm, step taken) as device tensors."""
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.opt)  # true gradients for the norm; step() knows it is done
        grads = [p.grad for p in self.module.parameters() if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads)  # read-only: the gradients are not clipped
        self.scaler.step(self.opt)  # fused Adam: skips on inf/NaN without a host sync
        self.scaler.update()
        return norm, torch.isfinite(norm)


@dataclass
class GANStep:
    G: Net
    D: Net
    G_ema: nn.Module
    loss: GANLoss
    penalties: list[Penalty]
    needs_real_grad: bool  # R1 differentiates D(real) with respect to the real images
    targets: Targets
    score: Scorer
    autocast: Callable[[], AbstractContextManager[None]]
    ema: EMA
    stats: DeviceStats
    z_dim: int
    num_classes: int
    device: torch.device
    latent_gen: torch.Generator  # seeded alike on every process
    rank: int
    world: int

    def latents(self, batch: int) -> tuple[Tensor, Tensor]:
        """Gaussian z (ganhacks #3) and uniform labels for this process's `batch`.

        Every process draws the whole global batch from the same generator and keeps its own
        slice: latents differ across processes, and a run gives the same z whatever the
        process count (the cost is world x a few hundred random numbers).
        """
        total, start = batch * self.world, batch * self.rank
        z = torch.randn(total, self.z_dim, device=self.device, generator=self.latent_gen)[start : start + batch]
        labels = torch.randint(0, self.num_classes, (total,), device=self.device, generator=self.latent_gen)
        return z, labels[start : start + batch]

    def d_phase(self, real_img: Tensor, real_labels: Tensor, noise_std: float) -> None:
        batch = real_img.shape[0]
        z, gen_labels = self.latents(batch)
        with torch.no_grad(), self.autocast():
            gen = self.G.run(z, gen_labels)
        real = add_instance_noise(to_signed_unit(real_img), noise_std).requires_grad_(self.needs_real_grad)
        gen = add_instance_noise(gen.float(), noise_std)
        with self.autocast():
            real_logits, gen_logits = self.score(self.D.run, real, real_labels, gen, gen_labels)
            real_target, gen_target = self.targets(batch)
            loss = self.loss.d_loss(real_logits, gen_logits, real_target, gen_target)
            penalty = sum(
                (p(self.D.run, real, real_logits, gen, real_labels, gen_labels) for p in self.penalties),
                torch.zeros((), device=self.device),
            )
        norm, ok = self.D.backward_step(loss + penalty)
        self.stats.add("loss_D", loss)
        self.stats.add("penalty_D", penalty)
        self.stats.add("D_real", torch.sigmoid(real_logits.detach().float()).mean())  # D(x)
        self.stats.add("D_gen", torch.sigmoid(gen_logits.detach().float()).mean())  # D(G(z))
        self.stats.add("gnorm_D", norm)
        self.stats.add("skipped_D", (~ok).float())

    def g_phase(self, batch: int, cur_nimg: int) -> None:
        z, gen_labels = self.latents(batch)
        # D's parameters take no gradient in this phase, and DDP does not all-reduce them.
        self.D.module.requires_grad_(False)
        with self.D.no_sync(), self.autocast():
            gen_logits = self.D.run(self.G.run(z, gen_labels), gen_labels)
            loss = self.loss.g_loss(gen_logits)
        norm, ok = self.G.backward_step(loss)
        self.D.module.requires_grad_(True)
        self.ema.update(self.G_ema, self.G.module, ok, cur_nimg)  # no EMA update from a skipped step
        self.stats.add("loss_G", loss)
        self.stats.add("gnorm_G", norm)
        self.stats.add("skipped_G", (~ok).float())
