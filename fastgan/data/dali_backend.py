"""NVIDIA DALI pipelines: JPEG/PNG decode and flips on the GPU, yielding the common data contract.

Folders go through `fn.readers.file` with explicit `files=`/`labels=` (with `file_root=` a flat
folder looks empty, NVIDIA/DALI#1201), one shard per process. Arrays (MNIST, CIFAR-10, npy) go
through a stateless `fn.external_source` callback that follows the tensor backend's
`ShardedOrder`, so both yield the same batches. On a GPU the JPEG decode is `device="mixed"`
(nvJPEG) and resize/crop/flip run on the GPU; without one the same graph is built from CPU
operators (`device_id=None`), which is what CI tests.

Resume uses DALI checkpointing (`enable_checkpointing=True`): the checkpoint records the reader's
epoch and position and the callbacks' iteration, and is saved as a base64 string so that
`torch.load(weights_only=True)` accepts it.
"""

from __future__ import annotations

import base64
import functools
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from fastgan.data.contract import Batch, BatchStream, StreamSpec
from fastgan.data.folder import FolderSource
from fastgan.data.sampler import ShardedOrder
from fastgan.data.sources import Source
from fastgan.errors import UsageError

PIP_LINE = "pip install 'fastgan[dali]' (nvidia-dali-cuda130)"
# GIF is listed by the folder source (PIL reads it) but DALI's decoders do not read it.
DALI_CANNOT_DECODE = {".gif"}


def dali_available() -> bool:
    try:
        import nvidia.dali  # noqa: F401
    except ImportError:
        return False
    return True


@functools.cache  # one line per process, however many pipelines are built
def _note_cpu_fallback() -> None:
    print("fastgan: data.backend = 'dali' without a GPU: decoding and flips run on DALI's CPU operators", file=sys.stderr)


class _ArrayFeed:
    """The batch for DALI iteration `i`: the tensor backend's indices, gathered on the host.

    Stateless (a pure function of the iteration) so a DALI checkpoint, which records only the
    iteration, resumes it exactly.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, order: ShardedOrder, offset: int) -> None:
        self.images, self.labels, self.order, self.offset = images, labels, order, offset
        self._epoch, self._indices = -1, np.empty(0, dtype=np.int64)

    def __call__(self, info: Any) -> tuple[np.ndarray, np.ndarray]:
        assert info.epoch_idx == 0, "the array pipeline is endless and never reset"
        epoch, b = divmod(info.iteration + self.offset, self.order.batches_per_epoch)
        if epoch != self._epoch:  # one permutation per pass, not per batch
            self._epoch, self._indices = epoch, self.order.epoch_indices(epoch).numpy()
        idx = self._indices[b * self.order.batch_size : (b + 1) * self.order.batch_size]
        return self.images[idx], self.labels[idx]


class _FlipFlags:
    """Per-image flip flags (int32 0/1) for DALI iteration `i`, drawn from (seed, epoch, i).

    A stateless draw rather than `fn.random.coin_flip`: the trainer saves the main process's data
    state only, and restoring that coin's generator on every rank would flip all ranks alike.
    """

    def __init__(self, seed: int, batch_size: int, offset: int) -> None:
        self.seed, self.batch_size, self.offset = seed, batch_size, offset

    def __call__(self, info: Any) -> np.ndarray:
        rng = np.random.default_rng([self.seed, info.epoch_idx, info.iteration + self.offset])
        return rng.integers(0, 2, size=self.batch_size, dtype=np.int32)


class DaliBatches(BatchStream):
    """Flips come from DALI's own graph (`_FlipFlags`), not the base's generator; the state is DALI's checkpoint."""

    def __init__(self, source: Source, spec: StreamSpec) -> None:
        if not dali_available():
            raise UsageError(f"data.backend = 'dali' needs NVIDIA DALI: {PIP_LINE}; or use data.backend = 'tensor' or 'torchvision'")
        if isinstance(source, FolderSource):
            odd = [f for f in source.files if f.suffix.lower() in DALI_CANNOT_DECODE]
            if odd:
                raise UsageError(
                    f"data.source = {source.name!r}: DALI cannot decode {len(odd)} GIF file(s), e.g. {odd[0]}; "
                    "convert them to PNG, make an array with `fastgan data prepare`, or use data.backend = 'torchvision'"
                )
        super().__init__(spec)
        self.source = source
        self.on_gpu = spec.device.type == "cuda"
        if not self.on_gpu and spec.rank == 0:
            _note_cpu_fallback()
        self._checkpoint: bytes | None = None  # restore point for the next pipeline built
        self._offset = 0  # iterations to skip when resuming without a DALI checkpoint (arrays only)
        self._iterator: Any = None

    # ------------------------------------------------------------------------ pipeline

    def _pipeline(self) -> Any:
        from nvidia.dali import fn, types
        from nvidia.dali.pipeline import Pipeline

        spec = self.spec
        device_id = (spec.device.index if spec.device.index is not None else torch.cuda.current_device()) if self.on_gpu else None
        pipe = Pipeline(
            batch_size=spec.batch_size,
            num_threads=max(1, spec.num_workers),  # data.num_workers: DALI's CPU threads per process
            device_id=device_id,
            seed=spec.process_seed,  # per-process random operators, as the other backends' flip generators
            enable_checkpointing=True,
            checkpoint=self._checkpoint,
        )
        flags = None
        with pipe:
            if spec.hflip:
                flags = fn.external_source(source=_FlipFlags(spec.process_seed, spec.batch_size, self._offset), batch=True, batch_info=True)
            if isinstance(self.source, FolderSource):
                images, labels = self._folder_graph(fn, types, flags)
            else:
                images, labels = self._array_graph(fn, types, flags)
            labels = fn.reshape(fn.cast(labels, dtype=types.DALIDataType.INT64), shape=[])  # int64 [B], not int32 [B, 1]
            pipe.set_outputs(images, labels.gpu() if self.on_gpu else labels)
        return pipe

    def _folder_graph(self, fn: Any, types: Any, flags: Any) -> tuple[Any, Any]:
        source, spec = self.source, self.spec
        assert isinstance(source, FolderSource)
        # `shuffle_after_epoch` reshuffles the whole list each pass with DALI's fixed seed, the same in
        # every process, so the shards stay disjoint (`random_shuffle` only shuffles a buffer within a
        # shard, and class sub-folders would give one-class batches). Pre-permuting the list by the
        # run's seed makes train.seed change the order too.
        perm = np.random.default_rng(spec.seed).permutation(len(source))
        encoded, labels = fn.readers.file(
            files=[str(source.files[i]) for i in perm],
            labels=[int(source.labels[i]) for i in perm],
            shard_id=spec.rank,
            num_shards=spec.world,
            shuffle_after_epoch=True,
            pad_last_batch=True,  # each pass starts on a batch boundary; the padded batch is dropped
            name="reader",
        )
        images = fn.decoders.image(
            encoded,
            device="mixed" if self.on_gpu else "cpu",  # mixed: nvJPEG on the GPU, output in GPU memory
            output_type=types.GRAY if source.channels == 1 else types.RGB,
            adjust_orientation=False,  # the PIL path ignores EXIF orientation too: both backends agree
        )
        # Shorter side to the resolution, then a centre square: what the PIL path does, in the other order.
        images = fn.resize(images, resize_shorter=source.resolution, interp_type=types.INTERP_CUBIC, antialias=True)
        images = fn.crop_mirror_normalize(
            images,
            crop=(source.resolution, source.resolution),
            mirror=flags if flags is not None else 0,
            dtype=types.UINT8,
            output_layout="CHW",
        )
        return images, labels

    def _array_graph(self, fn: Any, types: Any, flags: Any) -> tuple[Any, Any]:
        spec = self.spec
        images, labels = self.source.arrays()
        order = ShardedOrder(len(self.source), spec.batch_size, spec.rank, spec.world, spec.seed)
        images, labels = fn.external_source(
            source=_ArrayFeed(images, labels, order, self._offset),
            num_outputs=2,
            batch=True,
            batch_info=True,
            layout=["CHW", ""],
            dtype=[types.UINT8, types.INT64],
        )
        if self.on_gpu:
            images = images.gpu()  # one host->device copy per batch; the flip runs on the GPU
        if flags is not None:
            images = fn.flip(images, horizontal=flags)
        return images, labels

    def _start(self) -> Any:
        from nvidia.dali.plugin.pytorch import DALIGenericIterator, LastBatchPolicy

        if self._iterator is not None:  # a second iter() continues where the first stopped, like the other backends
            self._checkpoint = self._iterator.checkpoints()[0]
        reader = "reader" if isinstance(self.source, FolderSource) else None
        self._iterator = DALIGenericIterator(
            self._pipeline(),
            ["images", "labels"],
            reader_name=reader,  # a folder pass ends at its shard's end; arrays are endless (size -1)
            last_batch_policy=LastBatchPolicy.DROP,  # static shapes: the ragged last batch of a pass is dropped
            auto_reset=True,
        )
        return self._iterator

    # ------------------------------------------------------------------------ the contract

    def __iter__(self) -> Iterator[Batch]:
        iterator = self._start()
        while True:  # each loop is one pass of this process's shard; auto_reset begins the next
            for (batch,) in iterator:
                self.taken += 1
                yield batch["images"], batch["labels"]

    def state_dict(self) -> dict[str, Any]:
        checkpoint = self._iterator.checkpoints()[0] if self._iterator is not None else self._checkpoint
        return {
            "batches_taken": self.taken,
            "world": self.spec.world,
            "batch_size": self.spec.batch_size,
            "offset": self._offset,  # the callbacks' iteration = DALI's iteration + this
            "dali": base64.b64encode(checkpoint).decode("ascii") if checkpoint else "",
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.taken = int(state["batches_taken"])
        self._iterator, self._checkpoint, self._offset = None, None, 0
        same_layout = state.get("world") == self.spec.world and state.get("batch_size") == self.spec.batch_size
        if state.get("dali") and same_layout:
            self._checkpoint = base64.b64decode(state["dali"])
            self._offset = int(state.get("offset", 0))
        elif not isinstance(self.source, FolderSource):
            self._offset = self.taken  # the array feed is a function of the iteration: skip ahead exactly
        else:
            warnings.warn(
                "data.backend = 'dali': the saved data position is not a DALI checkpoint for this process count and batch size; "
                "the folder stream restarts at a new pass",
                stacklevel=2,
            )
