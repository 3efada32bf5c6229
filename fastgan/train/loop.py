"""The training loop: steps until `train.total_images`, with maintenance counted in images.

Between maintenance points the loop only calls the step and advances host-side counters; the
device stats are read (one host sync) once per log interval. Three things end a run early, each
with one line and its exit code (fastgan.errors): a signal (every process stops at the same
step boundary and saves: fastgan.run.stop), divergence (fastgan.run.guard), and a stalled
or dead peer (fastgan.run.peers).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NoReturn

import torch

from fastgan.errors import Diverged, Stopped
from fastgan.run import checkpoint as ckpt
from fastgan.run.guard import DivergenceGuard
from fastgan.run.peers import Stage
from fastgan.run.reporter import Reporter, failure_warnings
from fastgan.run.resume import restore, save_checkpoint, training_state
from fastgan.run.stop import StopSignals, signal_name
from fastgan.run.sync import sync_from_main
from fastgan.sampling.grid import display_grid, diversity, fixed_latents, generate_uint8, save_png
from fastgan.train.build import Trainer

__all__ = ["crossed", "restore", "save_checkpoint", "train", "training_state"]
COLLAPSE_RATIO = 0.3  # warn when sample diversity falls below this fraction of its best


def crossed(before: int, after: int, every: int) -> bool:
    return after // every > before // every


def train(trainer: Trainer, run_dir: Path, reporter: Reporter) -> None:
    acc, t = trainer.accelerator, trainer.cfg.train
    stage = Stage(acc.process_index, acc.num_processes, t.timeout_s)
    try:
        with StopSignals(acc.num_processes, t.timeout_s) as stop:
            loop(trainer, run_dir, reporter, stage, stop)
    except RuntimeError as e:
        failure = stage.failure(e)  # a collective timed out or lost a peer: one line, exit 5
        if failure is None:
            raise
        raise failure from None
    finally:
        reporter.finish(trainer.cur_nimg)


def loop(trainer: Trainer, run_dir: Path, reporter: Reporter, stage: Stage, stop: StopSignals) -> None:
    cfg, acc, step = trainer.cfg, trainer.accelerator, trainer.step
    t, m = cfg.train, cfg.model
    z, labels, row = fixed_latents(t.num_samples, m.z_dim, m.num_classes, m.conditional, t.seed, acc.device, m.latent)
    guard = DivergenceGuard(trainer, run_dir)
    data = iter(trainer.data)
    # G_ema is not wrapped by DDP: make sure every process starts from the main one's.
    stage.enter("broadcasting G_ema from the main process")
    sync_from_main(acc, trainer.G_ema, params=True)
    reporter.start(trainer.cur_nimg)
    last_time, last_nimg = time.perf_counter(), trainer.cur_nimg
    saved_at = -1
    while trainer.cur_nimg < t.total_images:
        before = trainer.cur_nimg
        stage.enter("the training step (its gradient all-reduce)")
        trainer.train_step(data)
        reporter.advance(trainer.cur_nimg)

        done = trainer.cur_nimg >= t.total_images
        if crossed(before, trainer.cur_nimg, t.log_every) or done:
            stage.enter("reading the log interval's statistics (all-reduce)")
            guard.add_weight_flags()
            values = step.stats.read(lambda x: acc.reduce(x, "mean"), lambda x: acc.reduce(x, "max"))  # syncs
            now = time.perf_counter()
            values["images_per_s"] = (trainer.cur_nimg - last_nimg) / max(now - last_time, 1e-9)
            last_time, last_nimg = now, trainer.cur_nimg
            reporter.log(trainer.cur_nimg, values, failure_warnings(values, cfg))
            guard.update(values, trainer.cur_nimg)  # raises Diverged past train.nonfinite_budget
        sample_now = crossed(before, trainer.cur_nimg, t.sample_every) or done
        save_now = crossed(before, trainer.cur_nimg, t.checkpoint_every) or done
        if sample_now or save_now:
            stage.enter("broadcasting BatchNorm statistics from the main process")
            sync_from_main(acc, trainer.G, trainer.D)  # BatchNorm statistics
            trainer.ready_G_ema()  # statistics of its own, the same on every process
        if sample_now:
            write_samples(trainer, run_dir, reporter, z, labels, row)
        if save_now:
            stage.enter("writing a checkpoint")
            if checkpoint(trainer, run_dir, reporter, guard, final=done) is not None:
                saved_at = trainer.cur_nimg
        for hook in trainer.extra.get("hooks", []):  # e.g. in-training metrics (train.eval_every)
            stage.enter("in-training eval (the main process evaluates while the others wait)")
            hook(trainer, before, run_dir, reporter)
        if not done:
            stage.enter("the stop check (all-reduce on the gloo side group)")
            signum = stop.agreed()
            if signum:
                stage.enter("writing the stop checkpoint")
                stop_and_save(trainer, run_dir, reporter, guard, signum, saved_at)


def checkpoint(trainer: Trainer, run_dir: Path, reporter: Reporter, guard: DivergenceGuard, final: bool) -> Path | None:
    """Save, unless the state holds non-finite tensors: then warn, or at the end of the run stop (exit 3)."""
    saved = save_checkpoint(trainer, run_dir, guard)
    if saved.path is not None:
        return saved.path
    n = trainer.cur_nimg
    what = f"{len(saved.nonfinite)} non-finite tensors (e.g. {saved.nonfinite[0]})" if saved.nonfinite else ""
    if final:
        main = trainer.accelerator.is_main_process
        raise Diverged(
            f"training ended at {n:,} images with {what}: not saved; resume from an earlier checkpoint with "
            f"fastgan train --resume {run_dir} --from nimg-... and a lower learning rate"
            if main
            else ""
        )
    reporter.warn(n, f"checkpoint not written: the state holds {what}; the run may be diverging")
    return None


def stop_and_save(trainer: Trainer, run_dir: Path, reporter: Reporter, guard: DivergenceGuard, signum: int, saved_at: int) -> NoReturn:
    """Every process: one checkpoint at this step boundary (unless this step wrote one), then Stopped."""
    n, name = trainer.cur_nimg, signal_name(signum)
    if saved_at == n:
        path: Path | None = run_dir / "checkpoints" / ckpt.checkpoint_name(n)
    else:
        sync_from_main(trainer.accelerator, trainer.G, trainer.D)
        trainer.ready_G_ema()
        path = checkpoint(trainer, run_dir, reporter, guard, final=False)
    if path is not None:
        message = f"fastgan: stopped by {name} at {n:,} images; saved {path}; continue: the same command plus --auto-resume"
    else:
        message = f"fastgan: stopped by {name} at {n:,} images; no checkpoint written (non-finite weights: the run diverged)"
    raise Stopped(message if trainer.accelerator.is_main_process else "", signum)


def write_samples(trainer: Trainer, run_dir: Path, reporter: Reporter, z: torch.Tensor, labels: torch.Tensor, row: int) -> None:
    if not trainer.accelerator.is_main_process:
        return
    images = generate_uint8(trainer.G_ema, z, labels)
    save_png(images, row, run_dir / "samples" / f"{ckpt.checkpoint_name(trainer.cur_nimg)}.png")
    save_png(images, row, run_dir / "samples" / "latest.png")
    reporter.grid(trainer.cur_nimg, display_grid(images, row))  # TensorBoard and samples/timeline.gif
    # ganhacks "track failures early": fixed-z samples that all look alike mean collapse.
    # Collapse is a fall in diversity from its best, not a low value at the start.
    spread = float(diversity(images))  # a sync, once per sample interval
    best = max(trainer.extra.get("best_diversity", 0.0), spread)
    trainer.extra["best_diversity"] = best
    reporter.scalar(trainer.cur_nimg, "sample_diversity", spread)
    if spread < COLLAPSE_RATIO * best:
        reporter.warn(
            trainer.cur_nimg, f"fixed-z samples differ less and less (per-pixel std {spread:.1f}, best {best:.1f}): possible mode collapse"
        )
