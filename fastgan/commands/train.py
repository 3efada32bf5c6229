"""`fastgan train`: config -> checks -> data -> trainer -> run folder -> loop.

Everything that can fail on bad input runs before the run folder is created, so a usage error
leaves nothing behind; an existing run is never overwritten.
"""

from __future__ import annotations

import sys
from pathlib import Path

from fastgan.config import Config, load_config, to_toml
from fastgan.errors import UsageError
from fastgan.validate import validate


def resolve_config(config: Path | None, overrides: list[str], resume: Path | None) -> Config:
    if resume is not None:
        if config is not None:
            raise UsageError("give a CONFIG or --resume RUN_DIR, not both: a resumed run keeps its config.toml; change it with --set")
        if not (resume / "config.toml").is_file():
            raise UsageError(f"--resume {resume}: not a run folder (no config.toml); pass the folder a train run wrote")
        return load_config(resume / "config.toml", overrides)
    if config is None:
        raise UsageError("missing CONFIG: e.g. fastgan train configs/fashion-dcgan.toml (or --resume RUN_DIR)")
    return load_config(config, overrides)


def run_train(config: Path | None, overrides: list[str], out: Path | None, resume: Path | None, dry_run: bool) -> None:
    cfg = resolve_config(config, overrides, resume)
    validate(cfg)
    if dry_run:
        sys.stdout.write(to_toml(cfg))
        return

    from fastgan.engine import checkpoint as ckpt
    from fastgan.engine.build import build_trainer, make_accelerator, run_dir_default

    run_dir = resume if resume is not None else (out or run_dir_default(config))
    latest = ckpt.latest_checkpoint(run_dir) if resume is not None else None
    if resume is None and ckpt.list_checkpoints(run_dir):
        raise UsageError(
            f"--out {run_dir} already holds a run with checkpoints; continue it with --resume {run_dir}, or choose another --out"
        )

    from fastgan.data.sources import open_source
    from fastgan.engine.loop import restore, train
    from fastgan.engine.report import Reporter

    accelerator = make_accelerator(cfg)
    source = open_source(cfg.data, cfg.model.channels, cfg.model.resolution)
    trainer = build_trainer(cfg, accelerator, source)
    if cfg.train.eval_every > 0:
        from fastgan.engine.eval_hook import EvalHook

        # Built here, before the run folder exists: a missing test split is a usage error that leaves nothing behind.
        trainer.extra.setdefault("hooks", []).append(EvalHook(cfg, accelerator))
    if latest is not None:
        restore(trainer, latest)
    if trainer.cur_nimg >= cfg.train.total_images:
        raise UsageError(
            f"--resume {run_dir}: already trained {trainer.cur_nimg:,} of train.total_images = {cfg.train.total_images:,}; "
            "raise it with --set train.total_images=N to train longer"
        )

    if accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.toml").write_text(to_toml(cfg))
        what = f"resuming at {trainer.cur_nimg:,} images from {latest}" if latest else "new run"
        print(f"fastgan: {what} -> {run_dir} ({accelerator.num_processes} process(es) on {accelerator.device})", file=sys.stderr)
    accelerator.wait_for_everyone()
    reporter = Reporter(run_dir, cfg.train.total_images, enabled=accelerator.is_main_process)
    train(trainer, run_dir, reporter)
    if accelerator.is_main_process:
        print(
            f"fastgan: done. Samples: {run_dir / 'samples' / 'latest.png'}  Generator: {run_dir / 'generator.safetensors'}", file=sys.stderr
        )
    accelerator.end_training()
