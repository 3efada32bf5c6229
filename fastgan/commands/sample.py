"""`fastgan sample`: images from the EMA generator of a run, a checkpoint or a safetensors file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from fastgan.config import Config, load_config
from fastgan.errors import UsageError
from fastgan.latents import draw_latents
from fastgan.sampling.walks import check_truncation, truncate


def find_generator(path: Path) -> tuple[Config, dict[str, torch.Tensor], str]:
    """(config, G_ema state dict, description) for a run folder, checkpoint folder or safetensors file."""
    from fastgan.run import checkpoint as ckpt

    if path.is_file() and path.suffix == ".safetensors":
        from safetensors.torch import load_file

        cfg_path = path.parent / "config.toml"
        if not cfg_path.is_file():
            raise UsageError(f"{path}: no config.toml beside it; it is needed to rebuild the generator")
        return load_config(cfg_path), load_file(str(path)), str(path)
    if (path / "state.pt").is_file():  # a checkpoint folder
        state = ckpt.load_state(path)
        return load_config(path / "config.toml"), state["G_ema"], str(path)
    if (path / "config.toml").is_file():  # a run folder
        if (path / "generator.safetensors").is_file():
            return find_generator(path / "generator.safetensors")
        return find_generator(ckpt.latest_checkpoint(path))
    raise UsageError(f"{path}: not a run folder, checkpoint folder or .safetensors file (no config.toml, state.pt or generator there)")


def load_generator(path: Path) -> tuple[Config, torch.nn.Module, str]:
    """(config, G_ema on the CPU, description) for a run folder, checkpoint folder or safetensors file."""
    from fastgan.models import build_models
    from fastgan.run.checkpoint import nonfinite_tensors

    cfg, weights, where = find_generator(path)
    bad = nonfinite_tensors(weights)
    if bad:  # a diverged run's weights: black images, and a finite FD for them
        raise UsageError(f"{where}: {len(bad)} generator tensors hold inf/NaN (e.g. {bad[0]}): the run diverged; use an earlier checkpoint")
    G, _ = build_models(cfg.model)
    try:
        G.load_state_dict(weights)
    except RuntimeError as e:
        raise UsageError(f"{where}: weights do not match the config beside them ({str(e).splitlines()[0]})") from None
    return cfg, G, where


def run_sample(path: Path, n: int, out: Path, seed: int, truncation: float = 1.0) -> None:
    check_truncation(truncation)
    if out.suffix not in (".png", ".npy"):
        raise UsageError(f"--out {out}: the file must end in .png (a grid) or .npy (a uint8 array)")
    from fastgan.sampling.grid import generate_uint8, save_png

    cfg, G, where = load_generator(path)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    G = G.to(device)
    g = torch.Generator().manual_seed(seed)
    z = truncate(draw_latents(cfg.model.latent, n, cfg.model.z_dim, generator=g), truncation).to(device)
    if cfg.model.conditional:  # one row per class in the grid
        per_class = -(-n // cfg.model.num_classes)
        labels = torch.arange(cfg.model.num_classes).repeat_interleave(per_class)[:n].to(device)
        row = per_class
    else:
        labels = torch.zeros(n, dtype=torch.long, device=device)
        row = int(np.ceil(np.sqrt(n)))
    images = generate_uint8(G, z, labels)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".png":
        save_png(images, row, out)
    else:
        np.save(out, images.cpu().numpy())
    print(f"fastgan: wrote {n} samples of {where} to {out}", file=sys.stderr)
