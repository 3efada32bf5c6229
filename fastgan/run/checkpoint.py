"""Checkpoints that are complete or absent, loaded with weights_only=True.

Layout: RUN_DIR/checkpoints/nimg-000123456/{state.pt, rng-rank0.pt, ..., config.toml}.
Everything is written into `.tmp-nimg-...` first, each file fsynced; the main process renames
the folder once every process has written its part, so a crash never leaves a half checkpoint
as the newest (torch.save is not atomic: pytorch/pytorch#2883). Old checkpoints are pruned only
after the rename, except the one marked best by in-training eval and the last one written
before a divergence. State holds tensors and primitives only, so loading never runs pickled code.

`rng-rank<R>.pt` is process R's own state: its RNGs (python, numpy, torch, its own CUDA
device's) and its data position and flip generator.
"""

from __future__ import annotations

import io
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastgan import files
from fastgan.errors import StorageError, UsageError

_NAME = re.compile(r"^nimg-(\d{9,})$")
# A file in a checkpoint folder that in-training eval (fastgan.run.eval_hook) put there:
# pruning keeps that checkpoint whatever its age.
BEST_MARKER = "best"
SUPERSEDED = "superseded"  # checkpoints newer than the one a run resumed from are moved here


def checkpoint_name(cur_nimg: int) -> str:
    return f"nimg-{cur_nimg:09d}"


def checkpoint_nimg(path: Path) -> int:
    match = _NAME.match(path.name)
    assert match is not None, path
    return int(match.group(1))


def run_of_checkpoint(path: Path) -> Path | None:
    """The run folder of a checkpoint folder, complete or not (RUN/checkpoints/nimg-..., or one
    moved to RUN/checkpoints/superseded/), else None."""
    path = path.resolve()
    if not (path.is_dir() and path.name.startswith("nimg-")):
        return None
    if path.parent.name == "checkpoints":
        return path.parent.parent
    if path.parent.name == SUPERSEDED and path.parent.parent.name == "checkpoints":
        return path.parent.parent.parent
    return None


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _NAME.match(p.name) and (p / "state.pt").is_file()]
    return sorted(found, key=checkpoint_nimg)


def incomplete_after(run_dir: Path, cur_nimg: int) -> list[str]:
    """Names of checkpoint folders past `cur_nimg` that are not complete: a `.tmp-nimg-...` that a
    save cut short left, or a `nimg-...` without its state.pt."""
    folder = run_dir / "checkpoints"
    found = []
    for p in folder.iterdir() if folder.is_dir() else []:
        match = _NAME.match(p.name.removeprefix(".tmp-"))
        if match and int(match.group(1)) > cur_nimg and (p.name.startswith(".tmp-") or not (p / "state.pt").is_file()):
            found.append(p.name)
    return sorted(found)


def latest_checkpoint(run_dir: Path) -> Path:
    found = list_checkpoints(run_dir)
    if not found:
        raise UsageError(
            f"--resume {run_dir}: no complete checkpoint in {run_dir / 'checkpoints'}; "
            f"train first, or start it with: fastgan train CONFIG --out {run_dir} --auto-resume"
        )
    return found[-1]


def find_checkpoint(run_dir: Path, name: str) -> Path:
    """`--from NAME`: nimg-000060000, or just the number of images."""
    if name.isdigit():
        name = checkpoint_name(int(name))
    found = list_checkpoints(run_dir)
    for p in found:
        if p.name == name:
            return p
    have = ", ".join(p.name for p in found) or "none"
    raise UsageError(f"--from {name}: no such complete checkpoint in {run_dir / 'checkpoints'}; there are: {have}")


def rng_state(device: torch.device) -> dict[str, Any]:
    """This process's RNG states as tensors and primitives (loadable with weights_only=True).

    CUDA: only this process's own device, so a checkpoint resumes where fewer GPUs are visible.
    """
    name, keys, pos, has_gauss, cached = np.random.get_state()  # type: ignore[misc]
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(np.asarray(keys).copy()), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
        "device_type": device.type,
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> bool:
    """Restore what `rng_state` saved. False when the CUDA state cannot be restored here (saved
    on another device type, or by an older fastgan for more GPUs than are visible)."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if device.type != "cuda":
        return True  # nothing on a CPU draws from a CUDA generator
    saved = state.get("cuda")
    if isinstance(saved, (list, tuple)):  # before per-device states: one entry per visible GPU
        saved = saved[device.index or 0] if (device.index or 0) < len(saved) else None
    if not isinstance(saved, torch.Tensor):
        return False
    torch.cuda.set_rng_state(saved, device)
    return True


def tmp_dir(run_dir: Path, cur_nimg: int) -> Path:
    return run_dir / "checkpoints" / f".tmp-{checkpoint_name(cur_nimg)}"


def remove_partial(run_dir: Path) -> None:
    """Delete `.tmp-*` folders that a crash or a full disk left behind (main process, at start)."""
    folder = run_dir / "checkpoints"
    for p in folder.glob(".tmp-*") if folder.is_dir() else []:
        shutil.rmtree(p, ignore_errors=True)


def storage_error(e: OSError, path: Path) -> StorageError:
    """A training run's write failed: name the file; the run continues from its last checkpoint."""
    return files.storage_error(e, path, files.THEN_RESUME)


def write_bytes(path: Path, data: bytes | memoryview) -> None:
    """Write and fsync one file of a checkpoint's temporary folder, so that the rename that
    publishes the folder never outruns its data. A failure (ENOSPC, EIO, ...) becomes a
    StorageError naming the file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise storage_error(e, path) from None


def write_part(path: Path, obj: dict[str, Any]) -> None:
    """torch.save through memory: written straight to a file, a full disk surfaces as torch's
    "unexpected pos" RuntimeError with no errno; `write_bytes` raises OSError(ENOSPC)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(path, buf.getbuffer())


def publish(run_dir: Path, cur_nimg: int, keep: int, protect_up_to: int | None = None) -> Path:
    """Main process, after every process wrote its part: rename into place, then prune.

    `protect_up_to`: while the run may be diverging, the newest checkpoint at or before that
    nimg (the last good one) is never pruned.
    """
    src = tmp_dir(run_dir, cur_nimg)
    dst = run_dir / "checkpoints" / checkpoint_name(cur_nimg)
    if dst.exists():  # the same point saved twice (end of run right after an interval)
        shutil.rmtree(dst)
    os.replace(src, dst)
    files.fsync_dir(dst.parent)
    found = list_checkpoints(run_dir)
    last_good = None
    if protect_up_to is not None:
        last_good = next((p for p in reversed(found) if checkpoint_nimg(p) <= protect_up_to), None)
    for old in found[:-keep] if keep > 0 else []:
        if not (old / BEST_MARKER).exists() and old != last_good:
            shutil.rmtree(old, ignore_errors=True)
    return dst


def supersede_newer(run_dir: Path, cur_nimg: int) -> list[str]:
    """Resuming from an older checkpoint: move the newer ones to checkpoints/superseded/ (kept,
    but never resumed from), so the run's newest checkpoint is on the path it now follows."""
    moved = []
    for p in list_checkpoints(run_dir):
        if checkpoint_nimg(p) > cur_nimg:
            (run_dir / "checkpoints" / SUPERSEDED).mkdir(exist_ok=True)
            os.replace(p, files.unused_name(run_dir / "checkpoints" / SUPERSEDED / p.name))
            moved.append(p.name)
    return moved


def _load(path: Path, what: str) -> dict[str, Any]:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types
        run = path.parent.parent.parent
        reason = str(e).split("\n")[0].split(". ")[0]  # torch's advice to set weights_only=False is not for us
        raise UsageError(
            f"{path}: cannot load {what} ({type(e).__name__}: {reason}); "
            f"resume from an older one: fastgan train --resume {run} --from nimg-..."
        ) from None


def load_state(ckpt: Path) -> dict[str, Any]:
    """Load to host memory: load_state_dict copies onto each module's device, and a map to
    Accelerate's gloo device "cpu:0" is one torch.load cannot restore."""
    return _load(ckpt / "state.pt", "checkpoint")


def load_process_state(ckpt: Path, rank: int) -> dict[str, Any] | None:
    """Process `rank`'s own state, or None when the checkpoint was written by fewer processes."""
    path = ckpt / f"rng-rank{rank}.pt"
    return _load(path, "this process's state") if path.is_file() else None


def _float_tensors(tree: Any, prefix: str = "") -> list[tuple[str, torch.Tensor]]:
    if isinstance(tree, dict):
        return [x for k, v in tree.items() for x in _float_tensors(v, f"{prefix}{k}.")]
    if isinstance(tree, (list, tuple)):
        return [x for i, v in enumerate(tree) for x in _float_tensors(v, f"{prefix}{i}.")]
    if isinstance(tree, torch.Tensor) and tree.is_floating_point() and tree.numel():
        return [(prefix.rstrip("."), tree)]
    return []


def nonfinite_tensors(tree: Any) -> list[str]:
    """Names of the floating-point tensors in a nested dict/list that hold inf or NaN.
    One host sync per device (called per checkpoint and per loaded generator, never in the step)."""
    named = _float_tensors(tree)
    bad: list[str] = []
    for device in {t.device for _, t in named}:
        group = [(n, t) for n, t in named if t.device == device]
        flags = torch.stack([torch.isfinite(t).all() for _, t in group]).cpu().tolist()  # syncs
        bad += [n for (n, _), ok in zip(group, flags, strict=True) if not ok]
    return bad


def save_safetensors(module: torch.nn.Module, path: Path) -> None:
    """Write `module`'s weights and buffers as safetensors, atomically (fsynced, then renamed)."""
    from safetensors.torch import save

    # copies: G_ema's parameters are views of one flat buffer, and safetensors refuses shared memory
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}
    files.write_atomic(path, save(tensors), files.THEN_RESUME)
