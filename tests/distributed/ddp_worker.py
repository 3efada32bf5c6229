"""Run by tests/distributed/test_ddp.py under `accelerate launch`: N GAN steps through the real trainer,
then every process saves its own G, D and G_ema to OUT/rank{R}.pt.

    python tests/distributed/ddp_worker.py CONFIG OUT STEPS [section.key=value ...]

With DDP_WORKER_RESTORE=1 the processes then write a checkpoint into OUT/run together and restore it
into a freshly built trainer, and each also saves what that one holds ("restored").
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from fastgan.train.build import Trainer


def main() -> None:
    from fastgan.config import load_config
    from fastgan.data.sources import open_source
    from fastgan.run.resume import restore, save_checkpoint
    from fastgan.train.build import build_trainer
    from fastgan.train.setup import make_accelerator

    config, out, steps, *overrides = sys.argv[1:]
    cfg = load_config(Path(config), overrides)
    acc = make_accelerator(cfg)
    trainer = build_trainer(cfg, acc, open_source(cfg.data, cfg.model.channels, cfg.model.resolution))
    data = iter(trainer.data)
    for _ in range(int(steps)):
        trainer.train_step(data)
    dump = {
        "world": acc.num_processes,
        "G": {k: v.cpu() for k, v in trainer.G.named_parameters()},
        "D": {k: v.cpu() for k, v in trainer.D.named_parameters()},
        "G_ema": {k: v.cpu() for k, v in trainer.G_ema.state_dict().items()},
        "stats": trainer.step.stats.read(lambda x: acc.reduce(x, "mean"), lambda x: acc.reduce(x, "max")),
        "augment": trainer.step.augment.state_dict(),  # ADA's p, the same on every process
        "ada_sum": own_sum(trainer),
        "phema": trainer.step.phema.flat.cpu(),  # post-hoc EMA's profiles (empty when off)
        "schedules": trainer.schedules.values(trainer.cur_nimg),  # [schedule]'s values where the run stopped
        "adam": {net: [(g["lr"], g["betas"]) for g in getattr(trainer.step, net).opt.param_groups] for net in ("G", "D")},
    }
    if os.environ.get("DDP_WORKER_RESTORE") == "1":
        saved = save_checkpoint(trainer, Path(out) / "run").path
        assert saved is not None
        fresh = build_trainer(cfg, acc, open_source(cfg.data, cfg.model.channels, cfg.model.resolution))
        restore(fresh, saved)
        dump["restored"] = {"ada_sum": own_sum(fresh), "augment": fresh.step.augment.state_dict()}
    Path(out).mkdir(parents=True, exist_ok=True)
    torch.save(dump, Path(out) / f"rank{acc.process_index}.pt")
    acc.end_training()


def own_sum(trainer: Trainer) -> torch.Tensor | None:
    """ADA's running sum of this process alone (None without ADA)."""
    sign_sum = getattr(trainer.step.augment, "sign_sum", None)
    return None if sign_sum is None else sign_sum.detach().clone().cpu()


if __name__ == "__main__":
    main()
