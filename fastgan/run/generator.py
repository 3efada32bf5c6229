"""A trained generator from what a run leaves: a run folder, one checkpoint folder, or a
`generator.safetensors` with its `config.toml` beside it (for `sample`, `eval` and walks)."""

from __future__ import annotations

from pathlib import Path

import torch

from fastgan.config import Config, load_config
from fastgan.errors import UsageError
from fastgan.run import checkpoint as ckpt


def find_generator(path: Path) -> tuple[Config, dict[str, torch.Tensor], str]:
    """(config, G_ema state dict, description) for a run folder, checkpoint folder or safetensors file."""
    if path.is_file() and path.suffix == ".safetensors":
        cfg_path = path.parent / "config.toml"
        if not cfg_path.is_file():
            raise UsageError(f"{path}: no config.toml beside it; it is needed to rebuild the generator")
        return load_config(cfg_path), load_safetensors(path), str(path)
    if (path / "state.pt").is_file():  # a checkpoint folder
        state = ckpt.load_state(path)
        return load_config(path / "config.toml"), state["G_ema"], str(path)
    run = ckpt.run_of_checkpoint(path)
    if run is not None:  # a checkpoint folder whose state.pt is gone: say so, and what to give instead
        found = ckpt.list_checkpoints(run)
        others = f"a complete one, e.g. {found[-1]}, or the run folder {run}" if found else f"the run folder {run}"
        raise UsageError(f"{path}: this checkpoint has no state.pt (cut short while saving, or removed); give {others}")
    if any(path.glob("rng-rank*.pt")):  # a checkpoint folder on its own (copied out of its run), its state.pt gone
        raise UsageError(
            f"{path}: a checkpoint folder without its state.pt (cut short while saving, or removed), so it holds no "
            "generator; give a complete checkpoint, its run folder, or a generator.safetensors"
        )
    if (path / "config.toml").is_file():  # a run folder
        if (path / "generator.safetensors").is_file():
            return find_generator(path / "generator.safetensors")
        found = ckpt.list_checkpoints(path)
        if not found:
            raise UsageError(f"{path}: the run has no generator.safetensors and no complete checkpoint {no_checkpoint_yet(path)}")
        return find_generator(found[-1])
    raise UsageError(f"{path}: not a run folder, checkpoint folder or .safetensors file (no config.toml, state.pt or generator there)")


def no_checkpoint_yet(run: Path) -> str:
    """Why a run folder has no complete checkpoint: none written yet, or every one cut short."""
    folder = run / "checkpoints"
    if folder.is_dir() and any(p.name.startswith("nimg-") for p in folder.iterdir()):
        return "(each one in checkpoints/ lacks its state.pt: cut short while saving, or removed); nothing here can be sampled"
    return "yet; wait for its first checkpoint"


def load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file, or one line when it is truncated or not safetensors at all."""
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as e:  # SafetensorError, OSError, ...: the file is damaged
        reason = (str(e).strip().splitlines() or [""])[0]
        found = ckpt.list_checkpoints(path.parent)
        instead = f"give its run's newest checkpoint instead: {found[-1]}" if found else "copy it again from where it was made"
        raise UsageError(f"{path}: cannot read it, it is truncated or damaged ({type(e).__name__}: {reason}); {instead}") from None


def load_generator(path: Path) -> tuple[Config, torch.nn.Module, str]:
    """(config, G_ema on the CPU, description) for a run folder, checkpoint folder or safetensors file."""
    from fastgan.models import build_models

    cfg, weights, where = find_generator(path)
    bad = ckpt.nonfinite_tensors(weights)
    if bad:  # a diverged run's weights: black images, and a finite FD for them
        raise UsageError(f"{where}: {len(bad)} generator tensors hold inf/NaN (e.g. {bad[0]}): the run diverged; use an earlier checkpoint")
    G, _ = build_models(cfg.model)
    try:
        G.load_state_dict(weights)
    except RuntimeError as e:
        raise UsageError(f"{where}: weights do not match the config beside them ({str(e).splitlines()[0]})") from None
    return cfg, G, where


def run_folder_of(path: Path) -> Path:
    """The run folder of a run folder, a checkpoint folder (RUN/checkpoints/nimg-...) or RUN/generator.safetensors."""
    if path.is_file():
        return path.parent
    if path.resolve().parent.name == "checkpoints":
        return path.resolve().parent.parent
    return path
