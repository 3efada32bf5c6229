"""The ladder: the eager baseline, then one change at a time, cumulatively and greedily.

Each rung adds its change to the fastest configuration measured so far, so a change that
hurts on this device (bf16 on a CPU without bf16 units, say) is reported and then left out of
the rungs after it, instead of dragging them down. A rung that cannot run here says why and
is listed as skipped, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from fastgan.config import Config


@dataclass(frozen=True)
class Rung:
    name: str
    overrides: tuple[str, ...]  # `--set` strings added on top of the fastest rung so far
    why_not: Callable[[Config, torch.device], str | None] = lambda cfg, device: None
    note: str = ""


def _needs_cuda_for(what: str) -> Callable[[Config, torch.device], str | None]:
    return lambda cfg, device: None if device.type == "cuda" else f"{what} needs a GPU"


def _needs_cuda(cfg: Config, device: torch.device) -> str | None:
    return None if device.type == "cuda" else "CUDA graphs need a GPU"


def _needs_image_files(cfg: Config, device: torch.device) -> str | None:
    if not cfg.data.source.startswith("folder:"):
        return f"data.source {cfg.data.source!r} is an in-memory array: DALI earns its place on image files"
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return "DALI is not installed (pip install 'fastgan[dali]')"
    return None


def _needs_compiler(cfg: Config, device: torch.device) -> str | None:
    import shutil

    return None if device.type == "cuda" or shutil.which("cc") or shutil.which("gcc") else "no C++ compiler for inductor on the CPU"


LADDER: tuple[Rung, ...] = (
    Rung(
        "eager",
        ("train.precision=no", "train.compile=off", "data.backend=torchvision", "train.channels_last=false", "train.cudnn_benchmark=false"),
        note="fp32, no compile, DataLoader workers, no cuDNN autotuning: the tutorials' setup",
    ),
    Rung("tensor", ("data.backend=tensor",), note="dataset resident on the device"),
    Rung(
        "cudnn_benchmark",
        ("train.cudnn_benchmark=true",),
        _needs_cuda_for("cuDNN autotuning"),
        note="cuDNN picks the fastest conv algorithms",
    ),
    Rung("bf16", ("train.precision=bf16",), note="bf16 autocast"),
    Rung("fp16", ("train.precision=fp16",), note="fp16 autocast, one GradScaler per network"),
    Rung("channels_last", ("train.channels_last=true",), note="NHWC memory format"),
    Rung("compile", ("train.compile=default",), _needs_compiler, note="torch.compile, inductor"),
    Rung("cudagraphs", ("train.compile=reduce-overhead",), _needs_cuda, note="compile mode reduce-overhead"),
    Rung("dali", ("data.backend=dali",), _needs_image_files, note="DALI decode (GPU where present)"),
)
NAMES = tuple(r.name for r in LADDER)
