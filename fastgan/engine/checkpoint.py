"""Checkpoints that are complete or absent, loaded with weights_only=True.

Layout: RUN_DIR/checkpoints/nimg-000123456/{state.pt, rng-rank0.pt, ..., config.toml}.
Everything is written into `.tmp-nimg-...` first; the main process renames the folder once
every process has written its part, so a crash never leaves a half checkpoint as the newest
(torch.save is not atomic: pytorch/pytorch#2883). Old checkpoints are pruned only after the
rename, except the one marked best by in-training eval. State holds tensors and primitives
only, so loading never runs pickled code.
"""

from __future__ import annotations

import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fastgan.errors import UsageError

_NAME = re.compile(r"^nimg-(\d{9,})$")
# A file in a checkpoint folder that in-training eval (fastgan.engine.eval_hook) put there:
# pruning keeps that checkpoint whatever its age.
BEST_MARKER = "best"


def checkpoint_name(cur_nimg: int) -> str:
    return f"nimg-{cur_nimg:09d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first."""
    folder = run_dir / "checkpoints"
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _NAME.match(p.name) and (p / "state.pt").is_file()]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))  # type: ignore[union-attr]


def latest_checkpoint(run_dir: Path) -> Path:
    found = list_checkpoints(run_dir)
    if not found:
        raise UsageError(
            f"--resume {run_dir}: no complete checkpoint in {run_dir / 'checkpoints'}; train first, or pick another run folder"
        )
    return found[-1]


def rng_state() -> dict[str, Any]:
    """This process's RNG states as tensors and primitives (loadable with weights_only=True)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()  # type: ignore[misc]
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(np.asarray(keys).copy()), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy(), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def tmp_dir(run_dir: Path, cur_nimg: int) -> Path:
    return run_dir / "checkpoints" / f".tmp-{checkpoint_name(cur_nimg)}"


def write_part(path: Path, obj: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)


def publish(run_dir: Path, cur_nimg: int, keep: int) -> Path:
    """Main process, after every process wrote its part: rename into place, then prune."""
    src = tmp_dir(run_dir, cur_nimg)
    dst = run_dir / "checkpoints" / checkpoint_name(cur_nimg)
    if dst.exists():  # the same point saved twice (end of run right after an interval)
        shutil.rmtree(dst)
    os.replace(src, dst)
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        if not (old / BEST_MARKER).exists():
            shutil.rmtree(old, ignore_errors=True)
    return dst


def load_state(ckpt: Path) -> dict[str, Any]:
    """Load to host memory: load_state_dict copies onto each module's device, and a map to
    Accelerate's gloo device "cpu:0" is one torch.load cannot restore."""
    try:
        return torch.load(ckpt / "state.pt", map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling errors come in many types
        raise UsageError(f"{ckpt / 'state.pt'}: cannot load checkpoint ({type(e).__name__}: {e}); resume from an older one") from None


def load_rng(ckpt: Path, rank: int) -> dict[str, Any] | None:
    path = ckpt / f"rng-rank{rank}.pt"
    return torch.load(path, weights_only=True) if path.is_file() else None


def save_safetensors(module: torch.nn.Module, path: Path) -> None:
    """Write `module`'s weights and buffers as safetensors, atomically."""
    from safetensors.torch import save_file

    # copies: G_ema's parameters are views of one flat buffer, and safetensors refuses shared memory
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, path)
