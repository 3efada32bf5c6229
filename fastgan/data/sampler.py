"""The order images are shown in: one shared permutation per pass, strided across processes.

Every process draws the same permutation from (seed, pass) and takes every `world`-th index
starting at its rank, so processes see disjoint shards of each pass (StyleGAN2-ADA's
InfiniteSampler does the same). The ragged tail of a pass that does not fill a global batch is
dropped, so every batch has the same shape (static shapes for torch.compile).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass
class ShardedOrder:
    num_items: int
    batch_size: int  # per process
    rank: int
    world: int
    seed: int
    epoch: int = 0
    batch_in_epoch: int = 0  # batches this process has taken from the current pass

    def __post_init__(self) -> None:
        self.batches_per_epoch = self.num_items // (self.batch_size * self.world)
        assert self.batches_per_epoch > 0, "caller must check the dataset holds one global batch"

    def epoch_indices(self, epoch: int) -> torch.Tensor:
        """This process's indices for pass `epoch`, trimmed to whole batches (CPU int64)."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.num_items, generator=g)
        used = perm[: self.batches_per_epoch * self.batch_size * self.world]
        return used[self.rank :: self.world]

    def __iter__(self) -> Iterator[torch.Tensor]:
        """Endless: yields one batch of indices at a time, advancing the saved position."""
        while True:
            idx = self.epoch_indices(self.epoch)
            while self.batch_in_epoch < self.batches_per_epoch:
                b = self.batch_in_epoch
                self.batch_in_epoch += 1
                yield idx[b * self.batch_size : (b + 1) * self.batch_size]
            self.epoch += 1
            self.batch_in_epoch = 0

    def seek(self, batches_taken: int) -> None:
        """Continue as if `batches_taken` batches had already been taken (resume)."""
        self.epoch, self.batch_in_epoch = divmod(batches_taken, self.batches_per_epoch)
