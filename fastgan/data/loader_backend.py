"""A torch DataLoader with worker processes: the eager baseline the tutorials use.

Workers gather uint8 images on the host; the batch is pinned (on CUDA) and copied to the
device without blocking. The sampler is the same sharded order the tensor backend uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from fastgan.data.backends import StreamSpec, flip_reseed, random_hflip
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


class LoaderBatches:
    def __init__(self, source: Source, spec: StreamSpec) -> None:
        self.source = source
        self.spec = spec
        self.taken = 0
        self.flip_gen = torch.Generator(device=spec.device).manual_seed(spec.seed * 7919 + spec.rank)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
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
            self.taken += 1
            images = images.to(spec.device, non_blocking=True)
            if spec.hflip:
                images = random_hflip(images, self.flip_gen)
            yield images, labels.to(spec.device, non_blocking=True)

    def state_dict(self) -> dict[str, Any]:
        return {"batches_taken": self.taken, "flip_rng": self.flip_gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.taken = int(state["batches_taken"])
        if "flip_rng" in state:
            self.flip_gen.set_state(state["flip_rng"])
        else:  # saved by another backend or on another device type: a stream of this process's own
            self.flip_gen.manual_seed(flip_reseed(self.spec, self.taken))
