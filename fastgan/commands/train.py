"""`fastgan train`: config -> checks -> data -> trainer -> run folder -> loop.

Three ways in:

- `CONFIG [--out RUN]` starts a new run. RUN must be absent or empty: fastgan never writes into
  a folder it did not create (fastgan.run.folder).
- `--resume RUN [--from nimg-N] [--set ...]` continues RUN from its newest (or the named)
  checkpoint; `--set` may change only what fastgan.run.resume_rules allows.
- `CONFIG --out RUN --auto-resume` is idempotent, for schedulers and elastic restarts: it
  continues RUN if RUN has a checkpoint and starts it otherwise. When CONFIG and `--set` are
  what RUN was started with, RUN's config.toml wins (it may hold later changes); any other
  difference follows the resume rules.

Everything that can fail on bad input runs before the run folder is written, so a usage error
leaves nothing behind; what a run already had is never overwritten.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastgan.config import Config, load_config, to_toml
from fastgan.errors import FastganError, UsageError
from fastgan.run import checkpoint as ckpt
from fastgan.run import folder as rf
from fastgan.run.resume_rules import check_resume_changes, describe
from fastgan.validate import validate


@dataclass(frozen=True)
class TrainArgs:
    config: Path | None
    overrides: list[str]
    out: Path | None
    resume: Path | None
    from_: str | None = None
    auto_resume: bool = False
    dry_run: bool = False


@dataclass
class Plan:
    cfg: Config
    run_dir: Path
    checkpoint: Path | None  # continue from it; None: start from scratch
    existed: bool  # the folder already held a run (resumed, or restarted after an early kill)
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def check_flags(a: TrainArgs) -> None:
    if a.resume is not None and a.config is not None:
        raise UsageError("give a CONFIG or --resume RUN_DIR, not both: a resumed run keeps its config.toml; change it with --set")
    if a.resume is not None and a.auto_resume:
        raise UsageError("give --resume RUN, or CONFIG --out RUN --auto-resume, not both")
    if a.from_ is not None and a.resume is None:
        raise UsageError(f"--from {a.from_} picks a checkpoint of the run given with --resume RUN; add --resume")
    if a.resume is not None and a.out is not None and a.out.resolve() != a.resume.resolve():
        raise UsageError(f"--out {a.out} and --resume {a.resume} name different folders: a resumed run stays in its folder; drop --out")
    if a.auto_resume and (a.config is None or a.out is None):
        raise UsageError("--auto-resume needs CONFIG and --out RUN, e.g. fastgan train configs/debug.toml --out runs/d1 --auto-resume")
    if a.config is None and a.resume is None:
        raise UsageError("missing CONFIG: e.g. fastgan train configs/fashion-dcgan.toml (or --resume RUN_DIR)")


def plan_run(a: TrainArgs) -> Plan:
    check_flags(a)
    if a.resume is not None:
        rf.inspect(a.resume, "--resume")  # a file, or unreadable: one line
        if not (a.resume / "config.toml").is_file():
            raise UsageError(f"--resume {a.resume}: not a run folder (no config.toml); pass the folder a train run wrote")
        base = load_config(a.resume / "config.toml")
        cfg = load_config(a.resume / "config.toml", a.overrides)
        changes = check_resume_changes(base, cfg, a.resume, "--set " + " --set ".join(a.overrides))
        start = ckpt.find_checkpoint(a.resume, a.from_) if a.from_ is not None else ckpt.latest_checkpoint(a.resume)
        return Plan(cfg, a.resume, start, existed=True, changes=changes)

    assert a.config is not None
    requested = load_config(a.config, a.overrides)
    from fastgan.train.build import run_dir_default

    run_dir = a.out or run_dir_default(a.config)
    kind = rf.inspect(run_dir, "--out")
    if kind in (rf.Kind.ABSENT, rf.Kind.EMPTY):
        return Plan(requested, run_dir, None, existed=False)
    if kind is rf.Kind.OTHER:
        raise UsageError(
            f"--out {run_dir}: exists, is not empty and is not a fastgan run (no {rf.MARKER}); "
            "fastgan never writes into a folder it did not create: choose another --out"
        )
    found = ckpt.list_checkpoints(run_dir)
    if not a.auto_resume:
        what = "a run with checkpoints" if found else "a run stopped before its first checkpoint"
        raise UsageError(
            f"--out {run_dir} already holds {what}; continue it with the same command plus --auto-resume "
            f"(or --resume {run_dir}), or choose another --out"
        )
    if not found:  # killed before its first checkpoint: nothing to continue, start it again
        return Plan(requested, run_dir, None, existed=True)
    base = load_config(run_dir / "config.toml" if (run_dir / "config.toml").is_file() else found[-1] / "config.toml")
    if rf.read_marker(run_dir).get("config_sha256") == rf.config_hash(requested):
        return Plan(base, run_dir, found[-1], existed=True)  # the command the run began with: RUN's config.toml wins
    changes = check_resume_changes(base, requested, run_dir, f"{a.config}" + "".join(f" --set {o}" for o in a.overrides))
    return Plan(requested, run_dir, found[-1], existed=True, changes=changes)


def run_train(a: TrainArgs) -> None:
    plan = plan_run(a)
    cfg = plan.cfg
    validate(cfg)
    if a.dry_run:
        sys.stdout.write(to_toml(cfg))
        return

    from accelerate.utils import broadcast_object_list

    from fastgan.data.sources import open_source
    from fastgan.run.reporter import Reporter
    from fastgan.train.build import build_trainer, make_accelerator
    from fastgan.train.loop import restore, train

    accelerator = make_accelerator(cfg)
    main = accelerator.is_main_process
    source = open_source(cfg.data, cfg.model.channels, cfg.model.resolution)
    trainer = build_trainer(cfg, accelerator, source)
    if cfg.train.eval_every > 0:
        from fastgan.run.eval_hook import EvalHook

        # Built here, before the run folder exists: a missing test split is a usage error that leaves nothing behind.
        trainer.extra.setdefault("hooks", []).append(EvalHook(cfg, accelerator))
    notes = restore(trainer, plan.checkpoint) if plan.checkpoint is not None else []
    if trainer.cur_nimg >= cfg.train.total_images:
        if a.auto_resume:  # idempotent: a finished run stays finished
            if main:
                print(f"fastgan: {plan.run_dir} has trained all {cfg.train.total_images:,} images; nothing to do", file=sys.stderr)
            return
        raise UsageError(
            f"--resume {plan.run_dir}: already trained {trainer.cur_nimg:,} of train.total_images = {cfg.train.total_images:,}; "
            "raise it with --set train.total_images=N to train longer"
        )

    # From here on the run folder is written, by the main process; the others learn the outcome.
    error, lock = "", None
    if main:
        try:
            lock = prepare_folder(plan, trainer.cur_nimg, notes, f"{accelerator.num_processes} process(es) on {accelerator.device}")
        except UsageError as e:
            error = str(e)
    if accelerator.num_processes > 1:
        error = broadcast_object_list([error])[0]
    if error:
        raise UsageError(error if main else "")

    run_dir = plan.run_dir
    try:
        reporter = Reporter(run_dir, cfg.train.total_images, enabled=main, purge_after=trainer.cur_nimg if plan.existed else None)
        train(trainer, run_dir, reporter)
        if main:
            rf.log_event(run_dir, "done", nimg=trainer.cur_nimg)
            print(
                f"fastgan: done. Samples: {run_dir / 'samples' / 'latest.png'}  Generator: {run_dir / 'generator.safetensors'}",
                file=sys.stderr,
            )
    except FastganError as e:
        if main:
            with contextlib.suppress(OSError):
                rf.log_event(run_dir, type(e).__name__, nimg=trainer.cur_nimg, message=str(e), exit_code=e.exit_code)
        raise
    except OSError as e:  # the main process writing logs or samples
        raise ckpt.storage_error(e, Path(os.fsdecode(e.filename)) if e.filename else run_dir) from None  # TensorBoard's are bytes
    finally:
        if lock is not None:
            lock.release()
    accelerator.end_training()


def prepare_folder(plan: Plan, cur_nimg: int, notes: list[str], where: str) -> rf.Lock:
    """Main process: lock the run folder, mark it, and bring its logs back to `cur_nimg`."""
    run_dir, cfg = plan.run_dir, plan.cfg
    flag = "--out" if plan.checkpoint is None else "--resume"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{flag} {run_dir}: cannot create the run folder ({e.strerror}); choose a writable place") from None
    lock, notice = rf.acquire_lock(run_dir)
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
        if plan.changes:
            lines.append(f"changed on resume: {describe(plan.changes)}")
        if notes:
            lines.append(
                f"notice: {plan.checkpoint} was saved on another device type: {', '.join(notes)} cannot be restored exactly and "
                "were re-seeded from (train.seed, images seen); the run continues, but not bitwise as on the original device"
            )
        rf.write_atomic(run_dir / "config.toml", to_toml(cfg))
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
            notes=lines,
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
