"""The whole dataset resident on the training device as uint8; batches are device-side gathers.

Fashion-MNIST's 60k 28x28 images are 47 MB, so they fit anywhere; each step is one index
into a device tensor, with no host work and no copy across the bus.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from fastgan.data.contract import Batch, BatchStream, StreamSpec
from fastgan.data.sampler import ShardedOrder
from fastgan.data.sources import Source


class TensorBatches(BatchStream):
    def __init__(self, source: Source, spec: StreamSpec) -> None:
        super().__init__(spec)
        images, labels = source.arrays()
        # np.require copies read-only arrays (idx files are read into immutable buffers).
        self.images = torch.from_numpy(np.require(images, requirements=["C", "W"])).to(spec.device)
        self.labels = torch.from_numpy(np.require(labels, requirements=["C", "W"])).to(spec.device)
        self.order = ShardedOrder(len(source), spec.batch_size, spec.rank, spec.world, spec.seed)

    def __iter__(self) -> Iterator[Batch]:
        self.order.seek(self.taken)
        epoch = -1
        local = torch.empty(0, dtype=torch.long)
        for _ in self.order:  # advances the shared order; the indices are sliced on the device
            if self.order.epoch != epoch:  # one host->device copy of the indices per pass
                epoch = self.order.epoch
                local = self.order.epoch_indices(epoch).to(self.spec.device)
            b = self.order.batch_in_epoch - 1
            sel = local[b * self.spec.batch_size : (b + 1) * self.spec.batch_size]
            yield self.taken_batch(self.images.index_select(0, sel), self.labels.index_select(0, sel))
