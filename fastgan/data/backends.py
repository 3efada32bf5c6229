"""The registry of data backends: each turns a source into the data contract
(fastgan.data.contract). A backend is a class taking `(source, spec)` plus a line in `BACKENDS`;
each is imported only when chosen (DALI is optional)."""

from __future__ import annotations

from collections.abc import Callable

from fastgan.data.contract import Batches, StreamSpec
from fastgan.data.sources import Source
from fastgan.errors import UsageError


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
