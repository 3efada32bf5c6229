"""What keeps processes in step outside DDP: who opens a dataset first, and copies of what DDP
does not keep identical.

A dataset is opened by the main process first (it may download or extract it), then by the
others, so no two processes write the same files at once.

DDP keeps parameters in step. With broadcast_buffers=False (see build.make_accelerator),
BatchNorm running statistics drift apart per process, and G_ema, which DDP does not wrap,
copies G's. They only matter when G_ema samples in eval mode or a checkpoint is written, so
the main process's copies are broadcast at those points, never inside the step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast, broadcast_object_list
from torch import nn

from fastgan.errors import UsageError

T = TypeVar("T")


def main_process_first(accelerator: Accelerator, open_data: Callable[[], T]) -> T:
    """`open_data()` on the main process, then on each machine's first process, then on the rest.

    torchvision downloads and extracts into `data.root` when the files are missing: with every
    process doing it at once they overwrite each other's half-written files. In this order the
    first process of a machine finds what the main one wrote on a shared disk, or downloads it
    once for its own disk, and the rest only read. A usage error of the main process (no data
    there, no network) ends every process with it, said once; the others never open anything.
    """
    if accelerator.num_processes == 1:
        return open_data()
    main = accelerator.is_main_process
    opened: list[T] = []
    error = ""
    if main:
        try:
            opened.append(open_data())
        except UsageError as e:
            error = str(e)
    error = broadcast_object_list([error])[0]  # the others wait here while the main process downloads
    if error:
        raise UsageError(error if main else "")
    with accelerator.local_main_process_first():  # the main process is its machine's first: it only waits
        if not main:
            opened.append(open_data())
    return opened[0]


@torch.no_grad()
def sync_from_main(accelerator: Accelerator, *modules: nn.Module, params: bool = False) -> None:
    """Copy the main process's buffers (and parameters when `params`) to every process."""
    if accelerator.num_processes == 1:
        return
    for module in modules:
        tensors = list(module.buffers()) + (list(module.parameters()) if params else [])
        for t in tensors:
            t.copy_(broadcast(t.detach().clone(), from_process=0))
