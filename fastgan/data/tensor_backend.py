"""The whole dataset resident on the training device as uint8; batches are device-side gathers.

Fashion-MNIST's 60k 28x28 images are 47 MB, so they fit anywhere; each step is one index
into a device tensor, with no host work and no copy across the bus.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from fastgan.data.backends import StreamSpec, flip_reseed, random_hflip
from fastgan.data.sampler import ShardedOrder
from fastgan.data.sources import Source


class TensorBatches:
    def __init__(self, source: Source, spec: StreamSpec) -> None:
        images, labels = source.arrays()
        # np.require copies read-only arrays (idx files are read into immutable buffers).
        self.images = torch.from_numpy(np.require(images, requirements=["C", "W"])).to(spec.device)
        self.labels = torch.from_numpy(np.require(labels, requirements=["C", "W"])).to(spec.device)
        self.order = ShardedOrder(len(source), spec.batch_size, spec.rank, spec.world, spec.seed)
        self.spec = spec
        self.taken = 0
        self.flip_gen = torch.Generator(device=spec.device).manual_seed(spec.seed * 7919 + spec.rank)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        self.order.seek(self.taken)
        epoch = -1
        local = torch.empty(0, dtype=torch.long)
        for _ in self.order:  # advances the shared order; the indices are sliced on the device
            if self.order.epoch != epoch:  # one host->device copy of the indices per pass
                epoch = self.order.epoch
                local = self.order.epoch_indices(epoch).to(self.spec.device)
            b = self.order.batch_in_epoch - 1
            sel = local[b * self.spec.batch_size : (b + 1) * self.spec.batch_size]
            self.taken += 1
            images = self.images.index_select(0, sel)
            if self.spec.hflip:
                images = random_hflip(images, self.flip_gen)
            yield images, self.labels.index_select(0, sel)

    def state_dict(self) -> dict[str, Any]:
        return {"batches_taken": self.taken, "flip_rng": self.flip_gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.taken = int(state["batches_taken"])
        if "flip_rng" in state:
            self.flip_gen.set_state(state["flip_rng"])
        else:  # saved by another backend or on another device type: a stream of this process's own
            self.flip_gen.manual_seed(flip_reseed(self.spec, self.taken))
