"""The images G makes for a step: how the D phase gets them and how the G phase gets its own.

`Regenerate` (the default): the D phase runs G without gradients and the G phase runs G again,
with gradients, on its latents (fresh, or the D phase's with `tricks.g_latents = "reuse"`).

`KeepGraph` (`tricks.g_latents = "keep"`): the D phase runs G once, with gradients, and D gets a
detached copy; the G phase takes that very output and its graph. G's weights do not change
between the phases, so with the reused latents the G phase computes what "reuse" computes, one
G forward fewer per step (about a sixth of a DCGAN step's FLOPs). Two things differ, both
outside the losses and gradients: BatchNorm running statistics in G are updated once per step
instead of twice (they are used nowhere: G_ema gets statistics of its own), and G's activations
are held through the D phase. It needs one D phase and one micro-batch per step, and no CUDA
graphs (a replay would overwrite the kept output); validate.py refuses the rest.
"""

from __future__ import annotations

import torch
from torch import Tensor

from fastgan.train.nets import Net


class Regenerate:
    def for_D(self, G: Net, z: Tensor, labels: Tensor) -> Tensor:
        # a copy in fp32: under CUDA graphs G's output lives in the graph pool and must not be
        # held across D's replays; under autocast it is bf16/fp16 and D wants fp32 input
        with torch.no_grad():
            return G.run(z, labels).to(torch.float32, copy=True)

    def for_G(self, G: Net, z: Tensor, labels: Tensor) -> Tensor:
        return G.run(z, labels)


class KeepGraph:
    def __init__(self) -> None:
        self.kept: tuple[Tensor, Tensor] | None = None  # the D phase's z and G(z), with its graph

    def for_D(self, G: Net, z: Tensor, labels: Tensor) -> Tensor:
        gen = G.run(z, labels)
        self.kept = (z, gen)
        return gen.detach().to(torch.float32, copy=True)

    def for_G(self, G: Net, z: Tensor, labels: Tensor) -> Tensor:
        assert self.kept is not None and self.kept[0] is z, "the G phase takes the last D phase's latents"
        gen, self.kept = self.kept[1], None
        return gen


def generated_for(g_latents: str) -> Regenerate | KeepGraph:
    return KeepGraph() if g_latents == "keep" else Regenerate()
