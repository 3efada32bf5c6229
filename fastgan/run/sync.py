"""Keep what DDP does not keep identical across processes identical.

DDP keeps parameters in step. With broadcast_buffers=False (see build.make_accelerator),
BatchNorm running statistics drift apart per process, and G_ema, which DDP does not wrap,
copies G's. They only matter when G_ema samples in eval mode or a checkpoint is written, so
the main process's copies are broadcast at those points, never inside the step.
"""

from __future__ import annotations

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast
from torch import nn


@torch.no_grad()
def sync_from_main(accelerator: Accelerator, *modules: nn.Module, params: bool = False) -> None:
    """Copy the main process's buffers (and parameters when `params`) to every process."""
    if accelerator.num_processes == 1:
        return
    for module in modules:
        tensors = list(module.buffers()) + (list(module.parameters()) if params else [])
        for t in tensors:
            t.copy_(broadcast(t.detach().clone(), from_process=0))
