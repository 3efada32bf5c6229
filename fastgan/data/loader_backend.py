"""A torch DataLoader with worker processes: the eager baseline the tutorials use.

Workers gather uint8 images on the host; the batch is pinned (on CUDA) and copied to the
device without blocking. The sampler is the same sharded order the tensor backend uses.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from fastgan.data.contract import Batch, BatchStream, StreamSpec
from fastgan.data.sampler import ShardedOrder
from fastgan.data.sources import Source


class _TorchDataset(Dataset[tuple[torch.Tensor, int]]):
    def __init__(self, source: Source) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.source[i]
        return torch.tensor(image), label  # a copy: the source may be read-only


class _IndexBatches:
    """Adapts ShardedOrder to DataLoader's batch_sampler (lists of ints)."""

    def __init__(self, order: ShardedOrder) -> None:
        self.order = order

    def __iter__(self) -> Iterator[list[int]]:
        for idx in self.order:
            yield idx.tolist()


class LoaderBatches(BatchStream):
    def __init__(self, source: Source, spec: StreamSpec) -> None:
        super().__init__(spec)
        self.source = source

    def __iter__(self) -> Iterator[Batch]:
        spec = self.spec
        order = ShardedOrder(len(self.source), spec.batch_size, spec.rank, spec.world, spec.seed)
        order.seek(self.taken)  # the loader prefetches ahead: position counts what we yielded
        loader = DataLoader(
            _TorchDataset(self.source),
            batch_sampler=_IndexBatches(order),
            num_workers=spec.num_workers,
            pin_memory=spec.device.type == "cuda",
            persistent_workers=spec.num_workers > 0,
            prefetch_factor=4 if spec.num_workers > 0 else None,
        )
        for images, labels in loader:
            yield self.taken_batch(images.to(spec.device, non_blocking=True), labels.to(spec.device, non_blocking=True))
