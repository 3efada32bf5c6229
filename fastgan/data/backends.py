"""The data contract and the registry of backends that honour it.

Every backend yields, endlessly, `(images, labels)` on the training device: images uint8
[B, C, H, W] with B the per-process batch, labels int64 [B]. Normalisation to [-1, 1] happens
in the step, on the device. `tests/test_data_contract.py` holds every backend to this.
A backend is a class taking `(source, spec)` plus a line in `BACKENDS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from fastgan.data.sources import Source
from fastgan.errors import UsageError


@dataclass(frozen=True)
class StreamSpec:
    batch_size: int  # per process
    rank: int
    world: int
    seed: int
    device: torch.device
    hflip: bool = False
    num_workers: int = 2


class Batches(Protocol):
    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def random_hflip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image left-right with probability 1/2, on the images' device, no host sync."""
    flip = torch.rand(images.shape[0], device=images.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def flip_reseed(spec: StreamSpec, batches_taken: int) -> int:
    """A flip seed from (seed, rank, position), for a resume that cannot restore the flip generator's state."""
    return ((spec.seed * 7919 + spec.rank) * 1_000_003 + batches_taken) % 2**62


def _tensor_backend(source: Source, spec: StreamSpec) -> Batches:
    from fastgan.data.tensor_backend import TensorBatches

    return TensorBatches(source, spec)


def _torchvision_backend(source: Source, spec: StreamSpec) -> Batches:
    from fastgan.data.loader_backend import LoaderBatches

    return LoaderBatches(source, spec)


def _dali_backend(source: Source, spec: StreamSpec) -> Batches:
    from fastgan.data.dali_backend import DaliBatches  # imports DALI only when chosen

    return DaliBatches(source, spec)


BackendFactory = Callable[[Source, StreamSpec], Batches]
BACKENDS: dict[str, BackendFactory] = {
    "tensor": _tensor_backend,  # whole dataset resident on the device
    "torchvision": _torchvision_backend,  # DataLoader workers: the eager baseline
    "dali": _dali_backend,  # NVIDIA DALI pipeline (GPU decode)
}


def make_batches(backend: str, source: Source, spec: StreamSpec) -> Batches:
    if backend not in BACKENDS:
        raise UsageError(f"data.backend = {backend!r} is not known; choose one of: {', '.join(BACKENDS)}")
    needed = spec.batch_size * spec.world
    if len(source) < needed:
        raise UsageError(
            f"data.source = {source.name!r} has {len(source)} images, fewer than one global batch "
            f"(train.batch_size = {needed}); lower train.batch_size or add images"
        )
    return BACKENDS[backend](source, spec)
