"""What a run does between steps, as tasks for the loop (fastgan.train.loop), in this order:
the progress bar, the log interval's statistics (the one host sync per interval) and the
divergence guard, BatchNorm statistics broadcast before samples and checkpoints, the sample
grid, post-hoc EMA snapshots (fastgan.run.posthoc_ema, when on), the checkpoint, in-training
eval (fastgan.run.eval_hook), and the stop check.

Three things end a run early, each with one line and its exit code (fastgan.errors): a signal
(every process stops at the same step boundary and saves: fastgan.run.stop), divergence
(fastgan.run.guard), and a stalled or dead peer (fastgan.run.peers).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NoReturn

from fastgan import files
from fastgan.errors import Diverged, Stopped
from fastgan.run import checkpoint as ckpt
from fastgan.run.batchnorm import reset_nonfinite_batchnorm
from fastgan.run.guard import DivergenceGuard
from fastgan.run.peers import PeerWatch
from fastgan.run.posthoc_ema import PhemaSnapshots
from fastgan.run.reporter import Reporter, failure_warnings
from fastgan.run.resume import save_checkpoint
from fastgan.run.stop import StopSignals, signal_name
from fastgan.run.sync import sync_from_main
from fastgan.sampling.grid import display_grid, diversity, fixed_latents, generate_uint8, save_png
from fastgan.train.build import Trainer
from fastgan.train.loop import Task, crossed

COLLAPSE_RATIO = 0.3  # warn when sample diversity falls below this fraction of its best


class Progress:
    """The progress bar follows every step (host counters only)."""

    stage = None

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter

    def due(self, before: int, after: int, final: bool) -> bool:
        return True

    def __call__(self, trainer: Trainer, final: bool) -> None:
        self.reporter.advance(trainer.cur_nimg)


class LogStats:
    """Once per log interval: read the device stats (the host sync), log them, warn, and let the
    divergence guard count bad steps (it stops the run past train.nonfinite_budget)."""

    stage = "reading the log interval's statistics (all-reduce)"

    def __init__(self, trainer: Trainer, reporter: Reporter, guard: DivergenceGuard) -> None:
        self.every, self.reporter, self.guard = trainer.cfg.train.log_every, reporter, guard
        self.last_time, self.last_nimg = time.perf_counter(), trainer.cur_nimg

    def due(self, before: int, after: int, final: bool) -> bool:
        return crossed(before, after, self.every) or final

    def __call__(self, trainer: Trainer, final: bool) -> None:
        acc = trainer.accelerator
        self.guard.add_weight_flags()
        values = trainer.step.stats.read(lambda x: acc.reduce(x, "mean"), lambda x: acc.reduce(x, "max"))  # syncs
        now = time.perf_counter()
        values["images_per_s"] = (trainer.cur_nimg - self.last_nimg) / max(now - self.last_time, 1e-9)
        values.update(trainer.schedules.values(trainer.cur_nimg))  # [schedule]'s values here (host arithmetic)
        self.last_time, self.last_nimg = now, trainer.cur_nimg
        self.reporter.log(trainer.cur_nimg, values, failure_warnings(values, trainer.cfg))
        self.guard.update(values, trainer.cur_nimg, final)  # raises Diverged past train.nonfinite_budget


class RefreshStatistics:
    """Before a sample grid or a checkpoint: the main process's BatchNorm statistics everywhere
    (DDP does not broadcast buffers here), and G_ema's own statistics."""

    stage = "broadcasting BatchNorm statistics from the main process"

    def __init__(self, trainer: Trainer) -> None:
        self.sample_every, self.checkpoint_every = trainer.cfg.train.sample_every, trainer.cfg.train.checkpoint_every

    def due(self, before: int, after: int, final: bool) -> bool:
        return crossed(before, after, self.sample_every) or crossed(before, after, self.checkpoint_every) or final

    def __call__(self, trainer: Trainer, final: bool) -> None:
        sync_from_main(trainer.accelerator, trainer.G, trainer.D)
        trainer.ready_G_ema()  # statistics of its own, the same on every process


class SampleGrids:
    """A grid from a fixed z at each sample interval (main process): samples/nimg-*.png,
    latest.png, TensorBoard and the timeline; and the mode-collapse warning."""

    stage = None

    def __init__(self, trainer: Trainer, run_dir: Path, reporter: Reporter) -> None:
        t, m = trainer.cfg.train, trainer.cfg.model
        self.every, self.run_dir, self.reporter = t.sample_every, run_dir, reporter
        self.z, self.labels, self.row = fixed_latents(
            t.num_samples, m.z_dim, m.num_classes, m.conditional, t.seed, trainer.accelerator.device, m.latent
        )
        self.best_diversity = 0.0

    def due(self, before: int, after: int, final: bool) -> bool:
        return crossed(before, after, self.every) or final

    def __call__(self, trainer: Trainer, final: bool) -> None:
        if not trainer.accelerator.is_main_process:
            return
        images = generate_uint8(trainer.G_ema, self.z, self.labels)
        samples = self.run_dir / "samples"
        save_png(images, self.row, samples / f"{ckpt.checkpoint_name(trainer.cur_nimg)}.png", files.THEN_RESUME)
        save_png(images, self.row, samples / "latest.png", files.THEN_RESUME)
        self.reporter.grid(trainer.cur_nimg, display_grid(images, self.row))  # TensorBoard and samples/timeline.gif
        # ganhacks "track failures early": fixed-z samples that all look alike mean collapse.
        # Collapse is a fall in diversity from its best, not a low value at the start.
        spread = float(diversity(images))  # a sync, once per sample interval
        self.best_diversity = max(self.best_diversity, spread)
        self.reporter.carry(trainer.cur_nimg, "sample_diversity", spread)  # the report plots it
        if spread < COLLAPSE_RATIO * self.best_diversity:
            self.reporter.warn(
                trainer.cur_nimg,
                f"fixed-z samples differ less and less (per-pixel std {spread:.1f}, best {self.best_diversity:.1f}): "
                "possible mode collapse",
            )


class Checkpoint:
    """At each checkpoint interval and at the end: every process writes its part."""

    stage = "writing a checkpoint"

    def __init__(self, trainer: Trainer, run_dir: Path, reporter: Reporter, guard: DivergenceGuard) -> None:
        self.every, self.run_dir, self.reporter, self.guard = trainer.cfg.train.checkpoint_every, run_dir, reporter, guard
        self.saved_at = -1  # images seen at the last checkpoint written

    def due(self, before: int, after: int, final: bool) -> bool:
        return crossed(before, after, self.every) or final

    def __call__(self, trainer: Trainer, final: bool) -> None:
        if self.write(trainer, final) is not None:
            self.saved_at = trainer.cur_nimg

    def write(self, trainer: Trainer, final: bool) -> Path | None:
        """Save, unless the state holds non-finite tensors: then warn, or at the end of the run stop (exit 3).
        Non-finite BatchNorm statistics are not a reason: they are reset first, with one warning."""
        n = trainer.cur_nimg
        # Every process: their statistics are the main process's (RefreshStatistics), so all reset the same.
        reset = [f"{net}.{name}" for net in ("G", "D", "G_ema") for name in reset_nonfinite_batchnorm(getattr(trainer, net))]
        if reset:
            shown = ", ".join(reset[:3]) + (f" and {len(reset) - 3} more" if len(reset) > 3 else "")
            self.reporter.warn(
                n, f"non-finite BatchNorm running statistics reset before the checkpoint ({shown}); the next batches estimate them again"
            )
        saved = save_checkpoint(trainer, self.run_dir, self.guard)
        if saved.path is not None:
            return saved.path
        what = f"{len(saved.nonfinite)} non-finite tensors (e.g. {saved.nonfinite[0]})" if saved.nonfinite else ""
        if final:
            main = trainer.accelerator.is_main_process
            raise Diverged(
                f"training ended at {n:,} images with {what}: not saved; resume from an earlier checkpoint with "
                f"fastgan train --resume {self.run_dir} --from nimg-... and a lower learning rate"
                if main
                else ""
            )
        self.reporter.warn(n, f"checkpoint not written: the state holds {what}; the run may be diverging")
        return None


class StopCheck:
    """After every step but the last: stop at this boundary if a process got SIGTERM or SIGINT,
    with one checkpoint (unless this step wrote one), then Stopped (exit 128 + signal)."""

    stage = "the stop check (all-reduce on the gloo side group)"

    def __init__(self, stop: StopSignals, checkpoint: Checkpoint, watch: PeerWatch) -> None:
        self.stop, self.checkpoint, self.watch = stop, checkpoint, watch

    def due(self, before: int, after: int, final: bool) -> bool:
        return not final

    def __call__(self, trainer: Trainer, final: bool) -> None:
        signum = self.stop.agreed()
        if signum:
            self.watch.enter("writing the stop checkpoint")
            self.stop_and_save(trainer, signum)

    def stop_and_save(self, trainer: Trainer, signum: int) -> NoReturn:
        n, name, run_dir = trainer.cur_nimg, signal_name(signum), self.checkpoint.run_dir
        if self.checkpoint.saved_at == n:
            path: Path | None = run_dir / "checkpoints" / ckpt.checkpoint_name(n)
        else:
            sync_from_main(trainer.accelerator, trainer.G, trainer.D)
            trainer.ready_G_ema()
            path = self.checkpoint.write(trainer, final=False)
        if path is not None:
            message = f"fastgan: stopped by {name} at {n:,} images; saved {path}; continue: the same command plus --auto-resume"
        else:
            message = f"fastgan: stopped by {name} at {n:,} images; no checkpoint written (non-finite weights: the run diverged)"
        raise Stopped(message if trainer.accelerator.is_main_process else "", signum)


def maintenance(trainer: Trainer, run_dir: Path, reporter: Reporter, stop: StopSignals, watch: PeerWatch, extra: list[Task]) -> list[Task]:
    """The tasks of a training run, in the order they run after a step; `extra` (in-training
    eval) runs after the checkpoint, so a best eval can point at the checkpoint of its step."""
    guard = DivergenceGuard(trainer, run_dir)
    saver = Checkpoint(trainer, run_dir, reporter, guard)
    return [
        Progress(reporter),
        LogStats(trainer, reporter, guard),
        RefreshStatistics(trainer),
        SampleGrids(trainer, run_dir, reporter),
        # before the checkpoint: a kill between them loses no snapshot (a resume from the older checkpoint writes it again)
        *([PhemaSnapshots(trainer, run_dir, reporter)] if trainer.cfg.train.phema_every > 0 else []),
        saver,
        *extra,
        StopCheck(stop, saver, watch),
    ]
