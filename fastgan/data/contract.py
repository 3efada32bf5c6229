"""The data contract, and the small base that every backend builds on.

Every backend yields, endlessly, `(images, labels)` on the training device: images uint8
[B, C, H, W] with B the per-process batch, labels int64 [B]. Normalisation to [-1, 1] happens
in the step, on the device. `tests/unit/test_data_contract.py` holds every backend to this.

`BatchStream` holds what every backend shares: the spec, how many batches this process has
taken (its position, saved in checkpoints), and this process's flip generator, with the state
dict and the re-seeding that a resume from another backend or device type needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch

Batch = tuple[torch.Tensor, torch.Tensor]  # uint8 images [B, C, H, W] and int64 labels [B], on the device


@dataclass(frozen=True)
class StreamSpec:
    batch_size: int  # per process
    rank: int
    world: int
    seed: int
    device: torch.device
    hflip: bool = False
    num_workers: int = 2

    @property
    def process_seed(self) -> int:
        """This process's own seed for random data operations (flips), from train.seed and the rank."""
        return self.seed * 7919 + self.rank


class Batches(Protocol):
    def __iter__(self) -> Iterator[Batch]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def random_hflip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip each image left-right with probability 1/2, on the images' device, no host sync."""
    flip = torch.rand(images.shape[0], device=images.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


def flip_reseed(spec: StreamSpec, batches_taken: int) -> int:
    """A flip seed from (seed, rank, position), for a resume that cannot restore the flip generator's state."""
    return (spec.process_seed * 1_000_003 + batches_taken) % 2**62


class BatchStream:
    """A backend's position and flips: subclasses yield batches through `taken_batch`."""

    def __init__(self, spec: StreamSpec) -> None:
        self.spec = spec
        self.taken = 0  # batches this process has yielded
        self.flip_gen = torch.Generator(device=spec.device).manual_seed(spec.process_seed)

    def taken_batch(self, images: torch.Tensor, labels: torch.Tensor) -> Batch:
        """Count one batch and flip it if data.hflip asks (on the device, no host sync)."""
        self.taken += 1
        return (random_hflip(images, self.flip_gen) if self.spec.hflip else images), labels

    def state_dict(self) -> dict[str, Any]:
        return {"batches_taken": self.taken, "flip_rng": self.flip_gen.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.taken = int(state["batches_taken"])
        if "flip_rng" in state:
            self.flip_gen.set_state(state["flip_rng"])
        else:  # saved by another backend or on another device type: a stream of this process's own
            self.flip_gen.manual_seed(flip_reseed(self.spec, self.taken))
