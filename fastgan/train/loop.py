"""The training loop: steps until `train.total_images`, and after each step the tasks whose
interval, counted in images, was crossed.

The loop knows nothing of run folders: the run layer hands it its tasks (fastgan.run.tasks:
the progress bar, logs, sample grids, checkpoints, in-training eval, the stop check), each with
the stage a peer timeout names. Between tasks the loop only calls the step and advances
host-side counters: it makes no host sync of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from fastgan.train.build import Trainer

STEP_STAGE = "the training step (its gradient all-reduce)"


def crossed(before: int, after: int, every: int) -> bool:
    """True when a multiple of `every` images lies in (before, after]."""
    return after // every > before // every


class Task(Protocol):
    """Something done between steps. `stage` (None: the stage stays as it was) says what the
    loop is doing while it runs, for the one line a stalled peer gets (fastgan.run.peers)."""

    @property
    def stage(self) -> str | None: ...

    def due(self, before: int, after: int, final: bool) -> bool: ...

    def __call__(self, trainer: Trainer, final: bool) -> None: ...


def run_loop(trainer: Trainer, tasks: Sequence[Task], enter: Callable[[str], None] = lambda stage: None) -> None:
    """Train until train.total_images; after each step run every due task, in order."""
    data = iter(trainer.data)
    total = trainer.cfg.train.total_images
    while trainer.cur_nimg < total:
        before = trainer.cur_nimg
        enter(STEP_STAGE)
        trainer.train_step(data)
        final = trainer.cur_nimg >= total
        for task in tasks:
            if task.due(before, trainer.cur_nimg, final):
                if task.stage is not None:
                    enter(task.stage)
                task(trainer, final)
