"""One network and what trains it: its optimizer, its own GradScaler, and the backward-and-step
that is skipped on inf/NaN gradients in every precision without a host sync."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.profiler import record_function


@dataclass
class Net:
    """`module` is plain (what checkpoints save), `run` is what the step calls (DDP-wrapped and/or
    compiled), `eager` is DDP-wrapped but never compiled (for double backward)."""

    name: str  # "G" or "D": names the profiler ranges
    module: nn.Module
    run: Callable[..., Tensor]
    opt: torch.optim.Optimizer
    scaler: torch.amp.GradScaler  # its own loss scale (disabled outside fp16)
    no_sync: Callable[[], AbstractContextManager[None]]  # suspends DDP's gradient all-reduce
    eager: Callable[..., Tensor] | None = None  # default: run

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
