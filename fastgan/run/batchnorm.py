"""BatchNorm running statistics that became inf or NaN are reset when a checkpoint is written.

One forward pass with an overflow (an fp16 activation past 65504, a batch of extreme inputs)
can leave a running mean or variance non-finite while the weights stay fine: the step itself
is skipped, but BatchNorm updates its statistics in the forward. Training is unaffected (train
mode normalises with the batch's own statistics), yet the checkpoint check would refuse every
checkpoint from then on, until the run ended with nothing saved. Resetting them (mean 0,
variance 1, as at the start) lets the next batches estimate them again; G_ema's are recomputed
before each checkpoint anyway (fastgan.train.ema.recalibrate_batchnorm).
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def reset_nonfinite_batchnorm(module: nn.Module) -> list[str]:
    """Reset every BatchNorm layer of `module` whose running statistics hold inf or NaN; return
    their names. One host sync (at checkpoints, never in the step)."""
    norms = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return []
    finite = torch.stack([_finite(m) for _, m in norms]).tolist()  # syncs
    for (_, m), ok in zip(norms, finite, strict=True):
        if not ok:
            m.reset_running_stats()
    return [name for (name, _), ok in zip(norms, finite, strict=True) if not ok]


def _finite(norm: nn.modules.batchnorm._BatchNorm) -> torch.Tensor:
    """0-dim bool on the device: its running mean and variance are all finite."""
    assert norm.running_mean is not None and norm.running_var is not None  # track_running_stats
    return torch.isfinite(norm.running_mean).all() & torch.isfinite(norm.running_var).all()
