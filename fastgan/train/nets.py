"""One network and what trains it: its optimizer, its own GradScaler, and the backward-and-step
that is skipped on inf/NaN gradients in every precision without a host sync; with gradient
accumulation (`train.accumulate`), the same step after a forward and backward per micro-batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.profiler import record_function


def micro_batches(k: int, *tensors: Tensor) -> list[tuple[Tensor, ...]]:
    """The batch as `k` equal micro-batches (views, no copies) for gradient accumulation
    (`train.accumulate`); k = 1 gives the tensors themselves."""
    if k == 1:
        return [tensors]
    return list(zip(*(t.chunk(k) for t in tensors), strict=True))


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
        # what trains: tricks.freeze_d froze some of D's parameters for good before this was built
        self.trainable = [p for p in self.module.parameters() if p.requires_grad]

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """No gradients for this network's parameters inside (D in the G phase: G's backward flows
        through D, and DDP does not all-reduce D); the trainable ones take gradients again after."""
        for p in self.trainable:
            p.requires_grad_(False)
        try:
            yield
        finally:  # an exception must not leave the network frozen for whatever runs next
            for p in self.trainable:
                p.requires_grad_(True)

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
        self.backward(loss)
        return self.step(loss)

    def backward(self, loss: Tensor) -> None:
        """Add d loss / d parameters to the gradients (scaled under fp16)."""
        with record_function(f"model:{self.name}.backward"):
            self.scaler.scale(loss).backward()

    def accumulate_step(
        self, micro_loss: Callable[..., tuple[Tensor, tuple[Tensor, ...]]], parts: Sequence[tuple[Tensor, ...]]
    ) -> tuple[Tensor, Tensor, tuple[Tensor, ...]]:
        """`backward_step` over micro-batches: `micro_loss(*part)` gives (loss, statistics) for each
        part of the batch; each loss is a mean over its part, so their mean is the whole batch's.

        One optimizer step and one GradScaler unscale/step/update for all of them. Under DDP,
        forward and backward of every part but the last run inside `no_sync` (Accelerate's verb),
        so gradients are all-reduced once. Returns (grad norm, flags, the statistics' means).
        One part is exactly `backward_step`.
        """
        if len(parts) == 1:  # a config constant (train.accumulate = 1): no extra kernels
            loss, logs = micro_loss(*parts[0])
            return (*self.backward_step(loss), logs)
        k = len(parts)
        self.opt.zero_grad(set_to_none=True)
        rows = []
        for i, part in enumerate(parts):
            with self.no_sync() if i < k - 1 else nullcontext():  # DDP prepares its all-reduce in the forward
                loss, logs = micro_loss(*part)
                self.backward(loss / k)
            rows.append(torch.stack([loss.detach().float(), *(v.float() for v in logs)]))
        mean = torch.stack(rows).mean(0)  # [1 + statistics]: the loss and each statistic over the whole batch
        return (*self.step(mean[0]), tuple(mean[1:]))

    def step(self, loss: Tensor) -> tuple[Tensor, Tensor]:
        """The optimizer step on the gradients accumulated since zero_grad (skipped on inf/NaN)."""
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
