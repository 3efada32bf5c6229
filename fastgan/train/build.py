"""Assemble a trainer from a config: models, optimizers, scalers, data, and the step.

Distributed only through Accelerate: `prepare` wraps G and D in DDP when there are several
processes; everything else is plain PyTorch. fastgan owns autocast and one GradScaler per
network, because Accelerate keeps a single scaler and updates it in every optimizer step
(huggingface/accelerate#174), which would let a D overflow halve G's loss scale.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs, set_seed
from torch import nn

from fastgan.augment import build_augment
from fastgan.config import Config
from fastgan.data.backends import Batches, StreamSpec, make_batches
from fastgan.data.sources import Source
from fastgan.errors import UsageError
from fastgan.losses import get_loss, penalties, zero_centred_penalties
from fastgan.models import build_models
from fastgan.stats import DeviceStats
from fastgan.train.ema import EMA, recalibrate_batchnorm
from fastgan.train.lazy_reg import LazyRegularizer, adam_settings, no_regularizer
from fastgan.train.step import Batch, GANStep, Net, d_objective, score_concat, score_separate
from fastgan.train.tricks import Targets

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def make_accelerator(cfg: Config) -> Accelerator:
    """One Accelerator; mixed precision stays "no" there because fastgan applies its own."""
    launched = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    if launched not in ("no", cfg.train.precision) and cfg.train.precision != "auto":
        warnings.warn(
            f"the launch config asks for mixed_precision={launched}, but fastgan uses train.precision="
            f"{cfg.train.precision!r}; set --set train.precision={launched} to use it",
            stacklevel=2,
        )
    # broadcast_buffers=False: D runs twice (real, generated) before one backward, and DDP's
    # buffer broadcast before the second forward would modify BatchNorm buffers in place that
    # autograd saved (pytorch/pytorch#175024). StyleGAN2-ADA makes the same choice.
    ddp = DistributedDataParallelKwargs(broadcast_buffers=False)
    # Accelerate picks gloo DDP (MULTI_CPU) only when told cpu=True; without it, processes
    # launched on a machine with no GPU each run alone (DistributedType.NO).
    cpu = cfg.train.cpu or not torch.cuda.is_available()
    # Every collective waits at most train.timeout_s for the other processes (a stalled peer
    # would otherwise hang the job forever): fastgan.run.peers reports which one timed out.
    timeout = InitProcessGroupKwargs(timeout=datetime.timedelta(seconds=cfg.train.timeout_s))
    return Accelerator(cpu=cpu, mixed_precision="no", kwargs_handlers=[ddp, timeout])


def has_bf16_units(device: torch.device) -> bool:
    """True where bf16 runs in hardware: a CUDA GPU that supports it, or a CPU with AVX512-BF16
    or AMX (on other CPUs, bf16 autocast is emulated and ~20x slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    from fastgan.bench.peaks import cpu_info

    return any(f in cpu_info()["flags"].split() for f in ("avx512_bf16", "amx_bf16"))


def resolve_precision(precision: str, device: torch.device) -> str:
    """train.precision with "auto" made concrete for this device: "bf16" or "no"."""
    if precision != "auto":
        return precision
    return "bf16" if has_bf16_units(device) else "no"


def autocast_factory(device: torch.device, precision: str) -> Callable[[], AbstractContextManager[Any]]:
    dtype = AUTOCAST_DTYPES.get(precision)
    if dtype is None:
        return contextlib.nullcontext
    return lambda: torch.autocast(device.type, dtype=dtype)


def maybe_compile(module: Callable[..., torch.Tensor], cfg: Config) -> Callable[..., torch.Tensor]:
    """torch.compile with static shapes (the data contract keeps every batch the same shape)."""
    if cfg.train.compile == "off":
        return module
    mode = None if cfg.train.compile == "default" or cfg.train.compile_backend != "inductor" else cfg.train.compile
    return torch.compile(module, mode=mode, backend=cfg.train.compile_backend, dynamic=False)  # type: ignore[return-value]


def maybe_compile_function(fn: Callable[..., Any], cfg: Config) -> Callable[..., Any]:
    """The step's small eager math (losses, scores) compiled like the models, minus CUDA graphs:
    inductor fuses a dozen launches into one or two."""
    if cfg.train.compile == "off":
        return fn
    return torch.compile(fn, backend=cfg.train.compile_backend, dynamic=False)


def make_optimizer(module: nn.Module, opt_cfg: Any, device: torch.device, reg_every: int = 1) -> torch.optim.Optimizer:
    # Fused Adam takes an inf check as a tensor (`found_inf`): a step on inf/NaN gradients is
    # skipped on the device, in every precision, without a host sync (fastgan.train.step.Net).
    if device.type not in ("cuda", "cpu"):
        raise UsageError(f"fastgan trains on CUDA GPUs or the CPU; this process got device {device} (set --set train.cpu=true)")
    lr, betas = adam_settings(opt_cfg, reg_every)
    return torch.optim.Adam(module.parameters(), lr=lr, betas=betas, weight_decay=opt_cfg.weight_decay, fused=True)


def lazy_reg_every(cfg: Config) -> int:
    """loss.reg_every when R1 or R2 run lazily (a D step of their own), else 1."""
    lazy = cfg.loss.reg_every > 1 and (cfg.loss.r1_gamma > 0 or cfg.loss.r2_gamma > 0)
    return cfg.loss.reg_every if lazy else 1


def set_tf32(enabled: bool) -> None:
    """One switch for TF32 in fp32 matmuls and cuDNN convolutions (recorded in the run's config;
    fastgan.bench.peaks picks the matching peak for MFU). No effect on CPUs."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def set_gpu_math(cfg: Config) -> None:
    """Process-wide CUDA math switches from the config (no effect on CPUs)."""
    set_tf32(cfg.train.tf32)
    torch.backends.cudnn.benchmark = cfg.train.cudnn_benchmark


@dataclass
class Trainer:
    cfg: Config
    accelerator: Accelerator
    step: GANStep
    data: Batches
    per_process_batch: int
    cur_nimg: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

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
        """One GAN step (fastgan.train.step.GANStep) from `data`, counting the images it used."""
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

    set_gpu_math(cfg)
    set_seed(cfg.train.seed)  # the same on every process: identical initial G and D
    G, D = build_models(cfg.model)
    memory_format = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    G, D = G.to(device).to(memory_format=memory_format), D.to(device).to(memory_format=memory_format)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    reg_every = lazy_reg_every(cfg)
    opt_G, opt_D = make_optimizer(G, cfg.optim.G, device), make_optimizer(D, cfg.optim.D, device, reg_every)
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

    loss, lc = get_loss(cfg.loss.name), cfg.loss
    tr = cfg.tricks
    stats = DeviceStats()
    autocast = autocast_factory(device, precision)
    D_net = Net("D", D, maybe_compile(D_ddp, cfg), opt_D, scaler(), lambda: accelerator.no_sync(D_ddp), eager=D_ddp)
    augment = build_augment(
        cfg.augment, device=device, images_per_step=cfg.train.batch_size, reduce_sum=lambda x: accelerator.reduce(x, "sum"), stats=stats
    )
    regularize = no_regularizer
    if reg_every > 1:  # R1/R2 as their own eager D step, every reg_every D steps
        regularize = LazyRegularizer(
            zero_centred_penalties(lc.r1_gamma, lc.r2_gamma), every=reg_every, images_per_step=cfg.train.batch_size,
            D=D_net, autocast=autocast, augment=augment, stats=stats,
        )  # fmt: skip
    step = GANStep(
        G=Net("G", G, maybe_compile(G_ddp, cfg), opt_G, scaler(), lambda: accelerator.no_sync(G_ddp)),
        D=D_net,
        G_ema=G_ema,
        loss=loss,
        d_objective=maybe_compile_function(d_objective(loss), cfg),
        g_objective=maybe_compile_function(loss.g_loss, cfg),
        penalties=penalties(lc.name, lc.r1_gamma, lc.gp_weight, lc.r2_gamma, reg_every=lc.reg_every),
        needs_real_grad=lc.r1_gamma > 0 and lc.reg_every == 1,
        needs_gen_grad=lc.r2_gamma > 0 and lc.reg_every == 1,
        regularize=regularize,
        augment=augment,
        g_uses_real=loss.g_uses_real,
        targets=Targets(smoothing=tr.label_smoothing, flip=tr.label_flip, device=device),
        score=score_concat if tr.d_batches == "concat" else score_separate,
        autocast=autocast,
        ema=EMA(G_ema, half_life_images=tr.ema_halflife_images, images_per_step=cfg.train.batch_size * tr.d_steps, rampup=tr.ema_rampup),
        stats=stats,
        z_dim=cfg.model.z_dim,
        latent=cfg.model.latent,
        num_classes=cfg.model.num_classes if cfg.model.conditional else 1,
        device=device,
        latent_gen=torch.Generator(device=device).manual_seed(cfg.train.seed + 1),
        rank=rank,
        world=world,
        batch=batch,
        d_steps=tr.d_steps,
        reuse_d_latents=tr.g_latents == "reuse",
        noise_std=tr.instance_noise,
        noise_images=tr.instance_noise_images,
    )
    spec = StreamSpec(batch, rank, world, cfg.train.seed, device, hflip=cfg.data.hflip, num_workers=cfg.data.num_workers)
    data = make_batches(cfg.data.backend, source, spec)
    return Trainer(cfg, accelerator, step, data, batch)


def run_dir_default(config_path: Path | None) -> Path:
    import time

    stem = config_path.stem if config_path is not None else "run"
    return Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
