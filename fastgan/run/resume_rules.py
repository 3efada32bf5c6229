"""What a resumed run may change: an allow-list, so a key added later is refused until it is
known to be safe to change mid-run.

Optimizer settings are applied after the optimizer state is loaded (the state would otherwise
put the old learning rate back). Intervals and budgets are read by the loop as it goes. The
execution knobs (device, compile, channels_last, TF32, where the data is read from) change how
the same run is computed, not what it computes, and a run must be able to move machines.
Everything else (model, loss, data source, batch size, precision, tricks, seed, ...) would not
match the checkpoint or would silently change the experiment: refused with exit code 2.

`train.accumulate` may change: it splits the same global batch into more or fewer micro-batches
for the same mean gradient (equal to float rounding without BatchNorm), and everything a run
counts is in images, so checkpoints, EMA, lazy regularisation and ADA go on as before. It is how
a run moves to a device with less memory. With BatchNorm, the batch statistics change with it.

The precision a run computes in never changes, but `train.precision = "auto"` is made concrete
on each machine (bf16 where the hardware computes in it, else "no"). So every checkpoint
records the precision it was trained in (`precision` in state.pt), and a resume must compute in
the same one (`check_precision`, when the checkpoint is restored): where "auto" means something
else, the resume is refused, and `--set train.precision=<the recorded one>` continues it as
trained. That is why train.precision may change on resume between "auto" and a concrete value,
never between two concrete ones. A checkpoint from before the record was trained with the
value in its config.toml; if that was "auto", it stays "auto" (what it meant is unknown).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastgan.config import Config, ValueSchedule, flatten, to_dict
from fastgan.errors import UsageError

SCHEDULE_KEYS = tuple(ValueSchedule.__dataclass_fields__)

MUTABLE_ON_RESUME = frozenset(
    [f"optim.{net}.{key}" for net in ("G", "D") for key in ("lr", "betas", "weight_decay")]
    + [
        f"train.{key}"
        for key in (
            "total_images",
            "log_every",
            "sample_every",
            "checkpoint_every",
            "eval_every",
            "keep_checkpoints",
            "phema_every",  # snapshots carry their own image counts; the profiles are in the checkpoint
            "phema_keep",
            "warn_grad_norm",
            "nonfinite_budget",
            "timeout_s",
            # execution knobs: the same computation, on another device or compiled differently
            "cpu",
            "compile",
            "compile_backend",
            "channels_last",
            "tf32",
            "cudnn_benchmark",
            # the same gradient of the same global batch, computed in more or fewer micro-batches: a memory
            # knob, so a run can move to a smaller device. Counted in images, nothing else moves. Models with
            # BatchNorm see other batch statistics from then on (docs/training-extras.md).
            "accumulate",
        )
    ]
    + ["data.root", "data.num_workers", "data.download"]
    # Schedules of the optimizer settings, for the reason optim.* may change: Adam's lr and betas
    # are set from images seen before every step, so a new curve takes over at the resume's image
    # count (the value may jump to it, as with --set optim.G.lr). The schedules of gamma, the EMA
    # half-life and augmentation p stay refused, as loss.*, tricks.* and augment.* are: they define
    # the experiment, not how fast it is optimized.
    + [f"schedule.{value}_{net}.{key}" for value in ("lr", "beta2") for net in ("G", "D") for key in SCHEDULE_KEYS]
)


def config_changes(old: Config, new: Config) -> dict[str, tuple[Any, Any]]:
    """Dotted key -> (old, new) for every value that differs."""
    a, b = flatten(to_dict(old)), flatten(to_dict(new))
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def check_resume_changes(old: Config, new: Config, run_dir: Path | str, source: str) -> dict[str, tuple[Any, Any]]:
    """The changes from `old` (the run's config.toml) to `new`, if all may change on resume."""
    changes = config_changes(old, new)
    refused = [k for k in changes if k not in MUTABLE_ON_RESUME and not (k == "train.precision" and "auto" in changes[k])]
    if refused:
        shown = ", ".join(f"{k} ({changes[k][0]!r} -> {changes[k][1]!r})" for k in refused)
        raise UsageError(
            f"{source}: {shown} cannot change when resuming {run_dir}: the checkpoint was trained with the run's config.toml; "
            "keep it, or start a new run with another --out "
            "(may change: optim.*, schedule.lr_*/beta2_*, train.total_images, the intervals, ...)"
        )
    return changes


def describe(changes: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items())


def check_precision(trained: str | None, requested: str, resolved: str, checkpoint: Path) -> None:
    """Refuse a resume that would compute in another precision than `checkpoint` was trained in.

    trained: what the checkpoint records (None: "auto", before fastgan recorded what it meant);
    requested: train.precision now; resolved: what it means on this machine."""
    if trained is None:
        if requested != "auto":
            raise UsageError(
                f"train.precision = {requested!r}: {checkpoint} was trained with 'auto' before fastgan recorded what that meant, "
                "so another value cannot be checked against it; keep train.precision = 'auto'"
            )
        return
    if resolved != trained:
        raise UsageError(
            f"train.precision = {requested!r} is {resolved!r} on this machine, but {checkpoint} was trained in {trained!r}: "
            f"resume with --set train.precision={trained} to continue as trained (slow where the hardware only emulates it), "
            "or start a new run"
        )
