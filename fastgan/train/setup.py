"""The pieces a trainer is assembled from: the Accelerator, autocast, compile, optimizers and the
process-wide GPU math switches, each decided from the config.

Distributed only through Accelerate: `prepare` wraps G and D in DDP when there are several
processes; everything else is plain PyTorch. fastgan owns autocast and one GradScaler per
network, because Accelerate keeps a single scaler and updates it in every optimizer step
(huggingface/accelerate#174), which would let a D overflow halve G's loss scale.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs
from torch import nn

from fastgan.config import Config
from fastgan.errors import UsageError

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# fastgan's own deadline (fastgan.run.peers) ends a stalled run at train.timeout_s with one line;
# the backends give up this much later, so that NCCL's watchdog, which aborts the process with a
# message of its own, never comes first.
COLLECTIVE_MARGIN_S = 30


def collective_timeout(timeout_s: float) -> datetime.timedelta:
    """How long a collective of the process groups may wait: train.timeout_s plus the margin."""
    return datetime.timedelta(seconds=timeout_s + COLLECTIVE_MARGIN_S)


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
    # A stalled peer would otherwise hang the job forever: collectives give up after
    # train.timeout_s, and fastgan.run.peers reports which stage waited.
    timeout = InitProcessGroupKwargs(timeout=collective_timeout(cfg.train.timeout_s))
    return Accelerator(cpu=cpu, mixed_precision="no", kwargs_handlers=[ddp, timeout])


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


def make_optimizer(
    module: nn.Module, lr: float, betas: tuple[float, float], weight_decay: float, device: torch.device
) -> torch.optim.Optimizer:
    # Fused Adam takes an inf check as a tensor (`found_inf`): a step on inf/NaN gradients is
    # skipped on the device, in every precision, without a host sync (fastgan.train.nets.Net).
    if device.type not in ("cuda", "cpu"):
        raise UsageError(f"fastgan trains on CUDA GPUs or the CPU; this process got device {device} (set --set train.cpu=true)")
    return torch.optim.Adam(module.parameters(), lr=lr, betas=betas, weight_decay=weight_decay, fused=True)


def set_tf32(enabled: bool) -> None:
    """One switch for TF32 in fp32 matmuls and cuDNN convolutions (recorded in the run's config;
    fastgan.bench.peaks picks the matching peak for MFU). No effect on CPUs."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def set_gpu_math(cfg: Config) -> None:
    """Process-wide CUDA math switches from the config (no effect on CPUs)."""
    set_tf32(cfg.train.tf32)
    torch.backends.cudnn.benchmark = cfg.train.cudnn_benchmark
