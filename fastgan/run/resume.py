"""Saving and restoring a whole run, written by every process together.

`state.pt` (main process): G, D, G_ema, both optimizers and scalers, images seen, the latent
generator (the same on every process), the device type, the precision trained in, and ADA's p with the total of every
process's running sum. `rng-rank<R>.pt` (process R): its
RNGs, data position and flip generator, since each process draws its own flips.

Nothing non-finite is ever saved: the main process checks every floating-point tensor of the
state first, and no process writes when one is found. A write that fails (disk full) on any
process removes the partial folder on the main one and ends the run with one line (exit 4).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate.utils import broadcast_object_list, gather_object

from fastgan.config import load_config, to_toml
from fastgan.errors import FastganError, StorageError, UsageError
from fastgan.losses.plan import regularisation_plan
from fastgan.run import checkpoint as ckpt
from fastgan.run.guard import DivergenceGuard
from fastgan.run.resume_rules import check_precision
from fastgan.train.build import Trainer

STATE_VERSION = 3  # 2: per-process data state in rng-rank<R>.pt, the device type, own-device CUDA RNG; 3: the precision, ADA's total


def training_state(trainer: Trainer, augment: dict[str, Any]) -> dict[str, Any]:
    s = trainer.step
    return {
        "version": STATE_VERSION,
        "cur_nimg": trainer.cur_nimg,
        "device_type": trainer.accelerator.device.type,
        "precision": trainer.precision,  # what it computes in ("auto" made concrete): a resume must match it
        "G": trainer.G.state_dict(),
        "D": trainer.D.state_dict(),
        "G_ema": trainer.G_ema.state_dict(),
        "opt_G": s.G.opt.state_dict(),
        "opt_D": s.D.opt.state_dict(),
        "scaler_G": s.G.scaler.state_dict(),
        "scaler_D": s.D.scaler.state_dict(),
        "data": trainer.data.state_dict(),  # the main process's; older fastgan restored it on every process
        "latent_gen": s.latents.generator.get_state(),
        "augment": augment,  # ADA's p and running sum (empty without augmentation)
        **({"phema": s.phema.state_dict()} if s.phema.sigma_rels else {}),  # post-hoc EMA's profiles, when tracked
    }


def process_state(trainer: Trainer) -> dict[str, Any]:
    return {**ckpt.rng_state(trainer.accelerator.device), "data": trainer.data.state_dict()}


@dataclass
class Saved:
    path: Path | None  # None: not written, because the state holds non-finite tensors
    nonfinite: list[str] = field(default_factory=list)  # their names (main process only)


def save_checkpoint(trainer: Trainer, run_dir: Path, guard: DivergenceGuard | None = None) -> Saved:
    """All processes: check, write every part, publish (main), or raise StorageError on all."""
    acc, cfg = trainer.accelerator, trainer.cfg
    main, world = acc.is_main_process, acc.num_processes
    augment = trainer.step.augment.state_dict()  # on every process: ADA's running sum is summed over them
    state = training_state(trainer, augment) if main else None
    bad = ckpt.nonfinite_tensors(state) if state is not None else []
    pending = guard.pending_bad_steps() if guard is not None else torch.zeros((), device=acc.device)
    flags = torch.stack([torch.tensor(float(bool(bad)), device=acc.device), pending.float()])
    if world > 1:
        flags = acc.reduce(flags, "max")
    refused, suspect = (v > 0 for v in flags.tolist())  # syncs, once per checkpoint
    if refused:
        return Saved(None, bad)

    tmp = ckpt.tmp_dir(run_dir, trainer.cur_nimg)
    error = ""
    try:
        if main:
            ckpt.write_part(tmp / "state.pt", state)  # type: ignore[arg-type]
            ckpt.write_bytes(tmp / "config.toml", to_toml(cfg).encode())
        ckpt.write_part(tmp / f"rng-rank{acc.process_index}.pt", process_state(trainer))
    except StorageError as e:
        error = str(e)
    errors = [x for x in (gather_object([error]) if world > 1 else [error]) if x]
    if errors:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise StorageError(errors[0] if main else "")

    error = ""
    dst = run_dir / "checkpoints" / ckpt.checkpoint_name(trainer.cur_nimg)
    if main:
        protect = guard.protect_up_to(suspect) if guard is not None else None
        try:
            ckpt.publish(run_dir, trainer.cur_nimg, cfg.train.keep_checkpoints, protect)
            ckpt.save_safetensors(trainer.G_ema, run_dir / "generator.safetensors")
        except StorageError as e:
            error = str(e)
        except OSError as e:
            error = str(ckpt.storage_error(e, dst))
    if world > 1:
        error = broadcast_object_list([error])[0]
    if error:
        raise StorageError(error if main else "")
    return Saved(dst)


def apply_optim_settings(trainer: Trainer) -> None:
    """The config's optimizer settings over those a loaded optimizer state brought back, so that
    `--set optim.G.lr=...` on resume means what it says (D's adjusted for lazy R1/R2, as built)."""
    plan = regularisation_plan(trainer.cfg.loss)
    for net, opt_cfg in (("G", trainer.cfg.optim.G), ("D", trainer.cfg.optim.D)):
        lr, betas = plan.adam(net, opt_cfg)
        for group in getattr(trainer.step, net).opt.param_groups:
            group["lr"], group["betas"], group["weight_decay"] = lr, betas, opt_cfg.weight_decay


def restore(trainer: Trainer, path: Path) -> list[str]:
    """Load a checkpoint into a freshly built trainer (the same config, any process count, any
    device type). Returns the lines to print (main process) about what could not be restored
    exactly: generator states of another device type, re-seeded from (train.seed, images seen),
    and RNG states missing from the checkpoint."""
    state = ckpt.load_state(path)
    check_precision(trained_precision(state, path), trainer.cfg.train.precision, trainer.precision, path)
    s, acc = trainer.step, trainer.accelerator
    try:
        trainer.G.load_state_dict(state["G"])
        trainer.D.load_state_dict(state["D"])
        trainer.G_ema.load_state_dict(state["G_ema"])
        s.G.opt.load_state_dict(state["opt_G"])
        s.D.opt.load_state_dict(state["opt_D"])
    except (RuntimeError, KeyError, ValueError) as e:
        raise UsageError(
            f"{path}: checkpoint does not match this config's models ({str(e).splitlines()[0]}); resume with the run's own config.toml"
        ) from None
    apply_optim_settings(trainer)
    if state["scaler_G"]:
        s.G.scaler.load_state_dict(state["scaler_G"])
    if state["scaler_D"]:
        s.D.scaler.load_state_dict(state["scaler_D"])
    s.augment.load_state_dict(state.get("augment", {}))  # checkpoints from before [augment] have none
    restore_phema(trainer, state, path)
    trainer.cur_nimg = int(state["cur_nimg"])
    seed, rank, device = trainer.cfg.train.seed, acc.process_index, acc.device
    reseed = (seed * 1_000_003 + trainer.cur_nimg) % 2**62  # a function of (seed, images seen), the same on every process
    notes: list[str] = []

    own = ckpt.load_process_state(path, rank)
    if own is not None and "data" in own:
        data = dict(own["data"])
    elif rank == 0:  # older checkpoints hold the main process's data state only
        data = dict(state["data"])
    else:  # its position, not rank 0's flips (the backend re-seeds them from the position)
        data = {"batches_taken": state["data"]["batches_taken"]}
    if "flip_rng" in data and not _fits(data["flip_rng"], device):
        del data["flip_rng"]
        notes.append("the flip generator")
    trainer.data.load_state_dict(data)
    if _fits(state["latent_gen"], device):
        s.latents.generator.set_state(state["latent_gen"])
    else:
        s.latents.generator.manual_seed(reseed + 1)
        notes.append("the latent generator")
    if own is not None and not ckpt.set_rng_state(own, device):
        torch.cuda.manual_seed(reseed + rank)  # this process's device (Accelerate made it current)
        notes.append("the CUDA RNG")
    lines = []
    if notes:
        lines.append(
            f"notice: {path} was saved on another device type: {', '.join(notes)} cannot be restored exactly and "
            "were re-seeded from (train.seed, images seen); the run continues, but not bitwise as on the original device"
        )
    missing = [f"rng-rank{r}.pt" for r in range(acc.num_processes) if not (path / f"rng-rank{r}.pt").is_file()]
    if missing:  # what each process draws (python, numpy, torch RNGs, data flips) starts from its seed, not where it was
        lines.append(
            f"warning: {path} has no {', '.join(missing)}: those processes' RNG states (python, numpy, torch) are not restored, "
            "so the run continues from the checkpoint's weights but will not match one that was never stopped"
        )
    return lines


def restore_phema(trainer: Trainer, state: dict[str, Any], path: Path) -> None:
    """Post-hoc EMA's profiles continue where they were; a run that did not track them cannot
    start mid-run (its profiles would lack the images before), and turning it off drops them."""
    phema = trainer.step.phema
    if not phema.sigma_rels:
        return
    if "phema" not in state:
        raise UsageError(
            f"train.phema_every = {trainer.cfg.train.phema_every}: {path} was trained without post-hoc EMA, so its profiles "
            "cannot start mid-run; resume with --set train.phema_every=0, or start a new run with it"
        )
    phema.load_state_dict(state["phema"])


def trained_precision(state: dict[str, Any], path: Path) -> str | None:
    """The precision a checkpoint was trained in: its record, else (older checkpoints) the one in
    its config.toml unless that was "auto" (None: what "auto" meant there is unknown)."""
    if "precision" in state:
        return str(state["precision"])
    try:
        precision = load_config(path / "config.toml").train.precision
    except (FastganError, OSError):
        return None
    return None if precision == "auto" else precision


def _fits(gen_state: Any, device: torch.device) -> bool:
    """Whether a saved generator state is one a generator on `device` takes: CPU (Mersenne
    Twister, 5056 bytes) and CUDA (Philox, 16 bytes) states differ in size."""
    return isinstance(gen_state, torch.Tensor) and gen_state.numel() == torch.Generator(device=device).get_state().numel()
