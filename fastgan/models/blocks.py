"""D's blocks in order from the input, the same way for every model, for FreezeD.

FreezeD (Mo et al. 2020, arXiv:2002.10964) fine-tunes a GAN with D's lower blocks frozen: they
keep the features learned on the source data, and only the upper blocks and the logit adapt.
Every D lists its blocks with `blocks()` (`HasBlocks`); a block is a layer of D's body that holds
parameters, a BatchNorm counted with the layer before it. The conditioning head is never a block.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import nn

from fastgan.errors import UsageError


@runtime_checkable
class HasBlocks(Protocol):
    def blocks(self) -> list[nn.Module]: ...


def body_blocks(body: nn.Sequential) -> list[nn.Module]:
    """The layers of `body` that hold parameters, in order; a BatchNorm joins the block before it."""
    out: list[nn.Module] = []
    for layer in body:
        if not any(True for _ in layer.parameters()):
            continue
        if isinstance(layer, nn.modules.batchnorm._BatchNorm) and out:
            out[-1] = nn.ModuleList([*(out[-1] if isinstance(out[-1], nn.ModuleList) else [out[-1]]), layer])
        else:
            out.append(layer)
    return out


def freeze_blocks(D: nn.Module, n: int, model: str) -> None:
    """`tricks.freeze_d = n`: no gradient for D's first n blocks, for the whole run. BatchNorm
    statistics in them still follow the data (train mode); their scale and shift are frozen."""
    if n == 0:
        return
    assert isinstance(D, HasBlocks), f"{type(D).__name__} must list its blocks (fastgan.models.blocks)"
    blocks = D.blocks()
    if n > len(blocks):
        raise UsageError(f"tricks.freeze_d = {n}: the D of model {model!r} has {len(blocks)} blocks here; use 0 to {len(blocks)}")
    for block in blocks[:n]:
        block.requires_grad_(False)
