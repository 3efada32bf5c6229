"""Planning a training run from the command line, before anything is written.

Three ways in:

- `CONFIG [--out RUN]` starts a new run. RUN must be absent or empty: fastgan never writes into
  a folder it did not create (fastgan.run.folder).
- `--resume RUN [--from nimg-N] [--set ...]` continues RUN from its newest (or the named)
  checkpoint; `--set` may change only what fastgan.run.resume_rules allows.
- `CONFIG --init SOURCE` starts a new run whose G, D and G_ema come from SOURCE (fine-tuning,
  fastgan.run.init); it is recorded as `train.init` in the run's config.toml.
- `CONFIG --out RUN --auto-resume` is idempotent, for schedulers and elastic restarts: it
  continues RUN if RUN has a checkpoint and starts it otherwise. When CONFIG and `--set` are
  what RUN was started with, RUN's config.toml wins (it may hold later changes); any other
  difference follows the resume rules.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fastgan import files
from fastgan.config import Config, load_config
from fastgan.errors import UsageError
from fastgan.run import checkpoint as ckpt
from fastgan.run import folder as rf
from fastgan.run.lock import refuse_if_held
from fastgan.run.resume_rules import check_resume_changes


@dataclass(frozen=True)
class TrainArgs:
    config: Path | None
    overrides: list[str]
    out: Path | None
    resume: Path | None
    from_: str | None = None
    auto_resume: bool = False
    dry_run: bool = False
    init: Path | None = None  # --init: a new run from another run's weights


@dataclass
class Plan:
    cfg: Config
    run_dir: Path
    checkpoint: Path | None  # continue from it; None: start from scratch
    existed: bool  # the folder already held a run (resumed, or restarted after an early kill)
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # lines for the start of the run


def newest_complete_notes(run_dir: Path, start: Path) -> list[str]:
    """A notice when `start`, the newest complete checkpoint, is not the newest one saved."""
    cut = ckpt.incomplete_after(run_dir, ckpt.checkpoint_nimg(start))
    if not cut:
        return []
    return [f"notice: {', '.join(cut)} in {run_dir / 'checkpoints'} is incomplete (a save cut short); resuming from {start.name}, "
            "the newest complete checkpoint"]  # fmt: skip


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
        raise UsageError("--auto-resume needs CONFIG and --out RUN, e.g. fastgan train fashion-r3gan --out runs/f1 --auto-resume")
    if a.init is not None and a.resume is not None:
        raise UsageError(
            f"--init {a.init} starts a new run from another run's weights, --resume {a.resume} continues a run; give one of them"
        )
    if a.config is None and a.resume is None:
        raise UsageError("missing CONFIG: e.g. fastgan train fashion-r3gan (the quickstart; fastgan presets lists all), or --resume RUN")


def plan_run(a: TrainArgs) -> Plan:
    check_flags(a)
    if a.resume is not None:
        files.check_utf8(a.resume, "--resume")
        rf.inspect(a.resume, "--resume")  # a file, or unreadable: one line
        refuse_if_held(a.resume)  # the lock first: a live trainer's folder is never read as if it were still
        if not (a.resume / "config.toml").is_file():
            raise UsageError(f"--resume {a.resume}: not a run folder (no config.toml); pass the folder a train run wrote")
        base = load_config(a.resume / "config.toml")
        cfg = load_config(a.resume / "config.toml", a.overrides)
        changes = check_resume_changes(base, cfg, a.resume, "--set " + " --set ".join(a.overrides))
        if a.from_ is not None:
            return Plan(cfg, a.resume, ckpt.find_checkpoint(a.resume, a.from_), existed=True, changes=changes)
        start = ckpt.latest_checkpoint(a.resume)
        return Plan(cfg, a.resume, start, existed=True, changes=changes, notes=newest_complete_notes(a.resume, start))

    assert a.config is not None
    requested = load_config(a.config, a.overrides)
    if a.init is not None:  # recorded in config.toml as where the run came from; loaded by fastgan.run.init
        files.check_utf8(a.init, "--init")
        if not a.init.exists():
            raise UsageError(f"--init {a.init}: does not exist; give a run folder, checkpoint folder or generator.safetensors")
        requested = replace(requested, train=replace(requested.train, init=str(a.init.resolve())))
    run_dir = a.out or run_dir_default(a.config)
    files.check_utf8(run_dir, "--out")  # TensorBoard, JSON and the report cannot name it: refused before any folder is made
    kind = rf.inspect(run_dir, "--out")
    if kind in (rf.Kind.ABSENT, rf.Kind.EMPTY):
        return Plan(requested, run_dir, None, existed=False)
    if kind is rf.Kind.OTHER:
        raise UsageError(
            f"--out {run_dir}: exists, is not empty and is not a fastgan run (no {rf.MARKER}); "
            "fastgan never writes into a folder it did not create: choose another --out"
        )
    refuse_if_held(run_dir)  # before the checkpoints are read: never "nothing to do" for a run another trainer holds
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
    notes = newest_complete_notes(run_dir, found[-1])
    if rf.started_with(run_dir, requested):
        return Plan(base, run_dir, found[-1], existed=True, notes=notes)  # the command the run began with: RUN's config.toml wins
    changes = check_resume_changes(base, requested, run_dir, f"{a.config}" + "".join(f" --set {o}" for o in a.overrides))
    return Plan(requested, run_dir, found[-1], existed=True, changes=changes, notes=notes)


def run_dir_default(config_path: Path | None) -> Path:
    stem = config_path.stem if config_path is not None else "run"
    return Path("runs") / f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
