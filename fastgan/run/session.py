"""A training run from its plan to its end: build, restore, take the run folder, train, and
leave one line and an exit code whatever happens.

Everything that can fail on bad input runs before the run folder is written, so a usage error
leaves nothing behind; what a run already had is never overwritten. From the first write on,
the main process owns the folder (fastgan.run.lock) and the others learn the outcome.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from accelerate.utils import broadcast_object_list

from fastgan import files
from fastgan.config import to_toml
from fastgan.data.sources import open_source
from fastgan.errors import FastganError, PeerFailure, StorageError, UsageError
from fastgan.run import checkpoint as ckpt
from fastgan.run import folder as rf
from fastgan.run.eval_hook import EvalHook
from fastgan.run.init import describe as describe_init
from fastgan.run.init import init_from
from fastgan.run.lock import Lock, acquire_lock
from fastgan.run.peers import PeerWatch
from fastgan.run.plan import Plan
from fastgan.run.posthoc_ema import supersede_snapshots
from fastgan.run.reporter import Reporter
from fastgan.run.resume import restore
from fastgan.run.resume_rules import describe
from fastgan.run.stop import StopSignals
from fastgan.run.sync import main_process_first, sync_from_main
from fastgan.run.tasks import maintenance
from fastgan.train.build import Trainer, build_trainer
from fastgan.train.loop import Task, run_loop
from fastgan.train.setup import make_accelerator


def run_train(plan: Plan, auto_resume: bool) -> None:
    """Train as planned (fastgan.run.plan), from scratch or from plan.checkpoint."""
    cfg = plan.cfg
    accelerator = make_accelerator(cfg)
    main = accelerator.is_main_process
    # torchvision may download or extract the dataset: the main process first, so they never write at once
    source = main_process_first(accelerator, lambda: open_source(cfg.data, cfg.model.channels, cfg.model.resolution))
    if main and source.converted:  # said once, before the run: a source of another size or mode is no silent surprise
        print(f"fastgan: data.source = {cfg.data.source!r}: {source.converted}", file=sys.stderr)
    trainer = build_trainer(cfg, accelerator, source)
    hooks: list[EvalHook] = []
    if cfg.train.eval_every > 0:
        # Built here, before the run folder exists: a missing test split is a usage error that leaves nothing behind.
        hooks.append(EvalHook(cfg, accelerator))
    notes = restore(trainer, plan.checkpoint) if plan.checkpoint is not None else []
    init = init_from(trainer, Path(cfg.train.init)) if plan.checkpoint is None and cfg.train.init else None  # fine-tuning
    if init is not None:
        notes.append(describe_init(init))
    if trainer.cur_nimg >= cfg.train.total_images:
        if auto_resume:  # idempotent: a finished run stays finished
            if main:
                print(f"fastgan: {plan.run_dir} has trained all {cfg.train.total_images:,} images; nothing to do", file=sys.stderr)
            return
        raise UsageError(
            f"--resume {plan.run_dir}: already trained {trainer.cur_nimg:,} of train.total_images = {cfg.train.total_images:,}; "
            "raise it with --set train.total_images=N to train longer"
        )

    # From here on the run folder is written, by the main process; the others learn the outcome.
    error, full_disk, lock = "", False, None
    if main:
        try:
            where = f"{accelerator.num_processes} process(es) on {accelerator.device}"
            lock = prepare_folder(plan, trainer.cur_nimg, notes, where, trainer.precision, init.record() if init else None)
        except (UsageError, StorageError) as e:
            error, full_disk = str(e), isinstance(e, StorageError)
    if accelerator.num_processes > 1:
        error, full_disk = broadcast_object_list([error, full_disk])
    if error:
        raise (StorageError if full_disk else UsageError)(error if main else "")

    run_dir = plan.run_dir
    try:
        reporter = Reporter(run_dir, cfg.train.total_images, enabled=main, purge_after=trainer.cur_nimg if plan.existed else None)
        train(trainer, run_dir, reporter, [hook.attach(run_dir, reporter) for hook in hooks])
        if main:
            rf.log_event(run_dir, "done", nimg=trainer.cur_nimg)
            print(
                f"fastgan: done. Samples: {run_dir / 'samples' / 'latest.png'}  Generator: {run_dir / 'generator.safetensors'}",
                file=sys.stderr,
            )
    except FastganError as e:
        if main:
            with contextlib.suppress(OSError, StorageError):  # a full disk: the line on stderr is what is left
                rf.log_event(run_dir, type(e).__name__, nimg=trainer.cur_nimg, message=str(e), exit_code=e.exit_code)
        raise
    except OSError as e:  # the main process writing logs or samples
        raise ckpt.storage_error(e, Path(os.fsdecode(e.filename)) if e.filename else run_dir) from None  # TensorBoard's are bytes
    finally:
        if lock is not None:
            lock.release()
    accelerator.end_training()


def train(trainer: Trainer, run_dir: Path, reporter: Reporter, extra: list[Task]) -> None:
    """The loop with the run's tasks, under the stop signals; a lost or stalled peer becomes one
    line (exit 5), said by the main thread or, when it is blocked, by the watchdog (fastgan.run.peers)."""
    acc, t = trainer.accelerator, trainer.cfg.train

    def log_failure(e: PeerFailure) -> None:  # from the watchdog thread, just before the process ends
        if acc.is_main_process:
            with contextlib.suppress(OSError):
                rf.log_event(run_dir, type(e).__name__, nimg=trainer.cur_nimg, message=str(e), exit_code=e.exit_code)

    try:
        with PeerWatch(acc.process_index, acc.num_processes, t.timeout_s, on_failure=log_failure) as watch:
            try:
                with StopSignals(acc.num_processes, t.timeout_s) as stop:
                    tasks = maintenance(trainer, run_dir, reporter, stop, watch, extra)
                    # G_ema is not wrapped by DDP: make sure every process starts from the main one's.
                    watch.enter("broadcasting G_ema from the main process")
                    sync_from_main(acc, trainer.G_ema, params=True)
                    reporter.start(trainer.cur_nimg)
                    run_loop(trainer, tasks, watch.enter)
            except RuntimeError as e:
                failure = watch.failure(e)  # a collective timed out or lost a peer: one line, exit 5
                if failure is None:
                    raise
                raise failure from None
    finally:
        reporter.finish(trainer.cur_nimg)


def prepare_folder(plan: Plan, cur_nimg: int, notes: list[str], where: str, precision: str, init: dict | None = None) -> Lock:
    """Main process: lock the run folder, mark it, and bring its logs back to `cur_nimg`;
    the start or resume event records where it runs, the precision it computes in, and what a
    fine-tuned run was initialised from (`init`: path, nets, the source's images seen)."""
    run_dir, cfg = plan.run_dir, plan.cfg
    flag = "--out" if plan.checkpoint is None else "--resume"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{flag} {run_dir}: cannot create the run folder ({e.strerror}); choose a writable place") from None
    lock, notice = acquire_lock(run_dir)
    try:
        lines = [notice] if notice else []
        if plan.checkpoint is None or not (run_dir / rf.MARKER).is_file():  # a new run, or one from before the marker
            rf.write_marker(run_dir, cfg, flag)
        ckpt.remove_partial(run_dir)
        moved = ckpt.supersede_newer(run_dir, cur_nimg) if plan.checkpoint is not None else []
        if moved:
            where_to = run_dir / "checkpoints" / ckpt.SUPERSEDED
            lines.append(f"moved the checkpoints past {cur_nimg:,} images to {where_to}: {', '.join(moved)}")
        dropped = rf.truncate_log(run_dir / "metrics.jsonl", cur_nimg)
        rf.truncate_log(run_dir / "warnings.jsonl", cur_nimg)
        grids = rf.supersede_samples(run_dir, cur_nimg)
        if dropped or grids:
            what = [f"dropped {dropped} metrics.jsonl row(s)"] if dropped else []
            what += [f"moved {grids} sample grid(s) to samples/superseded/"] if grids else []
            lines.append(f"{' and '.join(what)} written past {cur_nimg:,} images by an earlier run")
        snapshots = supersede_snapshots(run_dir, cur_nimg)
        if snapshots:
            lines.append(f"moved {snapshots} post-hoc EMA snapshot(s) written past {cur_nimg:,} images to phema/superseded/")
        if plan.changes:
            lines.append(f"changed on resume: {describe(plan.changes)}")
        lines += plan.notes + notes
        files.write_atomic(run_dir / "config.toml", to_toml(cfg), files.THEN_RESUME)
        event = "resume" if plan.checkpoint is not None else "start"
        rf.log_event(
            run_dir,
            event,
            nimg=cur_nimg,
            checkpoint=str(plan.checkpoint) if plan.checkpoint else None,
            changed={k: list(v) for k, v in plan.changes.items()},
            superseded=moved,
            dropped_metrics_rows=dropped,
            where=where,
            precision=precision,
            notes=lines,
            **({"init": init} if init else {}),
        )
    except OSError as e:
        lock.release()
        raise UsageError(f"{flag} {run_dir}: cannot write there ({e.strerror}); choose a writable place") from None
    except BaseException:
        lock.release()
        raise
    started = f"resuming at {cur_nimg:,} images from {plan.checkpoint}" if plan.checkpoint else "new run"
    print(f"fastgan: {started} -> {run_dir} ({where})", file=sys.stderr)
    for line in lines:
        print(f"fastgan: {line}", file=sys.stderr)
    return lock
