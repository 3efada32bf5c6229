"""Assemble a trainer from a config: models, optimizers, scalers, data, and the step.

Every choice a config makes is made here, once: the step (fastgan.train.step) calls what it is
given without asking which trick it is. The pieces come from fastgan.train.setup.
"""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch import nn

from fastgan.augment import build_augment
from fastgan.config import Config
from fastgan.data.backends import make_batches
from fastgan.data.contract import Batch, Batches, StreamSpec
from fastgan.data.sources import Source
from fastgan.errors import UsageError
from fastgan.hardware import resolve_precision
from fastgan.losses import get_loss
from fastgan.losses.plan import regularisation_plan
from fastgan.models import build_models, freeze_blocks
from fastgan.stats import DeviceStats
from fastgan.train.ema import EMA, recalibrate_batchnorm
from fastgan.train.generated import generated_for
from fastgan.train.latents import LatentSampler
from fastgan.train.lazy_reg import LazyRegularizer, RegBatch, no_regularizer
from fastgan.train.nets import Net
from fastgan.train.phema import PowerEMAs
from fastgan.train.schedule import Schedules, build_schedules
from fastgan.train.setup import autocast_factory, make_optimizer, maybe_compile, maybe_compile_function, set_gpu_math
from fastgan.train.step import GANStep, Objectives, d_objective, score_concat, score_separate
from fastgan.train.tricks import InstanceNoise, Targets


@dataclass
class Trainer:
    cfg: Config
    accelerator: Accelerator
    step: GANStep
    data: Batches
    per_process_batch: int
    precision: str  # train.precision with "auto" made concrete for this device: what the run computes in
    cur_nimg: int = 0
    schedules: Schedules = field(default_factory=Schedules)  # [schedule]: values set before each step; none by default

    @property
    def G(self) -> nn.Module:
        return self.step.G.module

    @property
    def D(self) -> nn.Module:
        return self.step.D.module

    @property
    def G_ema(self) -> nn.Module:
        return self.step.G_ema

    def train_step(self, data: Iterator[Batch]) -> None:
        """One GAN step (fastgan.train.step.GANStep) from `data`, counting the images it used; the
        scheduled values (lr, betas, gamma, EMA half-life, augmentation p) are set first, from images seen."""
        self.schedules.apply(self.cur_nimg)
        self.cur_nimg = self.step(data, self.cur_nimg)

    def ready_G_ema(self) -> nn.Module:
        """G_ema with BatchNorm statistics of its own weights: call before it samples, is
        evaluated or exported. Seeded by images seen, so any process and any resume agree."""
        m = self.cfg.model
        recalibrate_batchnorm(
            self.G_ema, z_dim=m.z_dim, latent=m.latent, num_classes=m.num_classes if m.conditional else 1,
            seed=(self.cfg.train.seed * 1_000_003 + self.cur_nimg) % 2**62, device=self.accelerator.device,
        )  # fmt: skip
        return self.G_ema


def build_trainer(cfg: Config, accelerator: Accelerator, source: Source) -> Trainer:
    world, rank, device = accelerator.num_processes, accelerator.process_index, accelerator.device
    if cfg.train.batch_size % world:
        raise UsageError(f"train.batch_size = {cfg.train.batch_size} is the global batch and must divide evenly across {world} processes")
    if cfg.model.conditional and source.num_classes > cfg.model.num_classes:
        raise UsageError(f"model.num_classes = {cfg.model.num_classes}, but data.source {source.name!r} has {source.num_classes} classes")
    batch = cfg.train.batch_size // world
    if batch % cfg.train.accumulate:
        raise UsageError(
            f"train.accumulate = {cfg.train.accumulate} must divide each process's share of the batch "
            f"({cfg.train.batch_size} over {world} processes = {batch}); choose a divisor of {batch}"
        )
    plan = regularisation_plan(cfg.loss)

    set_gpu_math(cfg)
    set_seed(cfg.train.seed)  # the same on every process: identical initial G and D
    G, D = build_models(cfg.model)
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    G, D = G.to(device).to(memory_format=memory_format), D.to(device).to(memory_format=memory_format)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    freeze_blocks(D, cfg.tricks.freeze_d, cfg.model.name)  # before the optimizer and DDP: frozen for the whole run
    opt_G = make_optimizer(G, *plan.adam("G", cfg.optim.G), cfg.optim.G.weight_decay, device)
    opt_D = make_optimizer(D, *plan.adam("D", cfg.optim.D), cfg.optim.D.weight_decay, device)
    with warnings.catch_warnings():
        # torch 2.14 prefers forward_sync_buffers=False, which Accelerate's kwargs handler does
        # not offer yet; broadcast_buffers=False behaves the same for us (init is seeded alike).
        warnings.filterwarnings("ignore", message=".*broadcast_buffers.*is deprecated", category=FutureWarning)
        G_ddp, D_ddp = accelerator.prepare(G, D)  # DDP-wrapped when world > 1, else the same modules
    set_seed(cfg.train.seed, device_specific=True)  # per-process noise (dropout, flips) from here on

    precision = resolve_precision(cfg.train.precision, device)
    if cfg.train.precision == "auto" and accelerator.is_main_process:
        print(f"fastgan: train.precision = auto -> {precision!r} on {device}", file=sys.stderr)

    def scaler() -> torch.amp.GradScaler:
        return torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    loss, tr = get_loss(cfg.loss.name), cfg.tricks
    stats = DeviceStats()
    autocast = autocast_factory(device, precision)
    G_net = Net("G", G, maybe_compile(G_ddp, cfg), opt_G, scaler(), lambda: accelerator.no_sync(G_ddp))
    D_net = Net("D", D, maybe_compile(D_ddp, cfg), opt_D, scaler(), lambda: accelerator.no_sync(D_ddp), eager=D_ddp)
    augment = build_augment(
        cfg.augment, device=device, images_per_step=cfg.train.batch_size, reduce_sum=lambda x: accelerator.reduce(x, "sum"),
        stats=stats, main=accelerator.is_main_process,
    )  # fmt: skip
    regularize: Callable[[int, RegBatch], None] = no_regularizer
    if plan.lazy:  # R1/R2 as their own eager D step, every plan.every D steps
        regularize = LazyRegularizer(
            plan.lazy, every=plan.every, images_per_step=cfg.train.batch_size, D=D_net, autocast=autocast, augment=augment, stats=stats,
            accumulate=cfg.train.accumulate,
        )  # fmt: skip
    step = GANStep(
        G=G_net,
        D=D_net,
        ema=EMA(G_ema, half_life_images=tr.ema_halflife_images, images_per_step=cfg.train.batch_size * tr.d_steps, rampup=tr.ema_rampup),
        latents=LatentSampler(
            dist=cfg.model.latent,
            z_dim=cfg.model.z_dim,
            num_classes=cfg.model.num_classes if cfg.model.conditional else 1,
            batch=batch,
            rank=rank,
            world=world,
            device=device,
            seed=cfg.train.seed + 1,
            reuse=tr.g_latents in ("reuse", "keep"),
        ),  # fmt: skip
        objective=Objectives(
            d=maybe_compile_function(d_objective(loss), cfg), g=maybe_compile_function(loss.g_loss, cfg), g_uses_real=loss.g_uses_real
        ),
        reg=plan,
        regularize=regularize,
        augment=augment,
        targets=Targets(smoothing=tr.label_smoothing, flip=tr.label_flip, device=device),
        noise=InstanceNoise(std=tr.instance_noise, decay_images=tr.instance_noise_images),
        score=score_concat if tr.d_batches == "concat" else score_separate,
        autocast=autocast,
        stats=stats,
        d_steps=tr.d_steps,
        phema=PowerEMAs(
            G, cfg.train.phema_sigma_rels if cfg.train.phema_every > 0 else (), images_per_step=cfg.train.batch_size * tr.d_steps
        ),
        accumulate=cfg.train.accumulate,
        generated=generated_for(tr.g_latents),
    )
    spec = StreamSpec(batch, rank, world, cfg.train.seed, device, hflip=cfg.data.hflip, num_workers=cfg.data.num_workers)
    data = make_batches(cfg.data.backend, source, spec)
    schedules = build_schedules(cfg, opt_G=opt_G, opt_D=opt_D, plan=plan, ema=step.ema, augment=augment)
    return Trainer(cfg, accelerator, step, data, batch, precision, schedules=schedules)
