"""Fine-tuning: a NEW run whose G, D and G_ema start from another run's weights (`train.init`,
which `fastgan train CONFIG --init PATH` sets).

PATH is a run folder (its newest complete checkpoint), a checkpoint folder, or a
generator.safetensors with its config.toml beside it (G and G_ema only: D starts fresh).
Optimizers, GradScalers, ADA's p, images seen and the RNGs start fresh: this is a new run, not a
resume. The source must be the same model: the model keys that shape it, then every tensor's
name and shape, are compared before anything is written; the first mismatches are one line.
Loaded as the rest of fastgan loads (torch.load(weights_only=True), safetensors).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fastgan.config import Config, load_config
from fastgan.errors import UsageError
from fastgan.run import checkpoint as ckpt
from fastgan.run.generator import load_safetensors
from fastgan.train.build import Trainer


@dataclass(frozen=True)
class InitSource:
    path: Path  # what is loaded: a checkpoint folder or a generator.safetensors
    cfg: Config  # the config it was trained with
    weights: dict[str, dict[str, torch.Tensor]]  # "G", "G_ema" and, from a checkpoint, "D"
    nimg: int | None  # images the source had seen (None: a bare generator does not say)

    def record(self) -> dict[str, Any]:
        """What events.jsonl keeps of it (the start event's `init`)."""
        return {"path": str(self.path), "nets": sorted(self.weights), "source_nimg": self.nimg}


def find_init(path: Path) -> InitSource:
    """The source of `--init PATH`, or one line saying what PATH is not."""
    flag = f"--init {path}"
    if path.is_file():
        if path.suffix != ".safetensors":
            raise UsageError(f"{flag}: not a run folder, checkpoint folder or generator.safetensors")
        if not (path.parent / "config.toml").is_file():
            raise UsageError(f"{flag}: no config.toml beside it; it is needed to check the model matches")
        weights = load_safetensors(path)
        return InitSource(path.resolve(), load_config(path.parent / "config.toml"), {"G": weights, "G_ema": weights}, None)
    if (path / "state.pt").is_file():
        state = ckpt.load_state(path)
        nets = {net: state[net] for net in ("G", "D", "G_ema")}
        return InitSource(path.resolve(), load_config(path / "config.toml"), nets, int(state["cur_nimg"]))
    if (path / "config.toml").is_file():  # a run folder
        found = ckpt.list_checkpoints(path)
        if found:
            return find_init(found[-1])
        if (path / "generator.safetensors").is_file():
            return find_init(path / "generator.safetensors")
        raise UsageError(f"{flag}: the run has no complete checkpoint and no generator.safetensors yet")
    what = "does not exist" if not path.exists() else "is not a run folder, checkpoint folder or generator.safetensors"
    raise UsageError(f"{flag}: {what}")


def model_mismatch(there: Config, here: Config) -> str | None:
    """The first model key that makes the source another model, as `key: A there, B here`."""
    a, b = there.model, here.model
    keys = ["name", "channels", "resolution", "conditional"] + (["num_classes", "d_conditioning"] if b.conditional else [])
    for key in keys:
        if getattr(a, key) != getattr(b, key):
            return f"model.{key} is {getattr(a, key)!r} there and {getattr(b, key)!r} here"
    return None


def tensor_mismatches(net: str, there: dict[str, torch.Tensor], here: dict[str, torch.Tensor]) -> list[str]:
    """Every tensor of `net` whose name or shape differs, in the model's own order."""
    out = []
    for k, v in here.items():
        if k not in there:
            out.append(f"{net}.{k} {list(v.shape)} here is missing there")
        elif there[k].shape != v.shape:
            out.append(f"{net}.{k} is {list(there[k].shape)} there and {list(v.shape)} here")
    return out + [f"{net}.{k} {list(v.shape)} there is not in this model" for k, v in there.items() if k not in here]


def check_source(source: InitSource, cfg: Config, modules: dict[str, nn.Module]) -> None:
    flag = f"--init {source.path}"
    why = model_mismatch(source.cfg, cfg)
    if why:
        raise UsageError(f"{flag}: another model ({why}); fine-tuning needs the model.* of its config.toml")
    bad = [m for net, w in source.weights.items() for m in tensor_mismatches(net, w, modules[net].state_dict())]
    if bad:
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise UsageError(f"{flag}: the weights do not fit this model: {'; '.join(bad[:3])}{more}; use the model.* of its config.toml")
    nonfinite = [f"{net}.{n}" for net, w in source.weights.items() for n in ckpt.nonfinite_tensors(w)]
    if nonfinite:
        raise UsageError(
            f"{flag}: {len(nonfinite)} tensors hold inf/NaN (e.g. {nonfinite[0]}): that run diverged; use an earlier checkpoint"
        )


def init_from(trainer: Trainer, path: Path) -> InitSource:
    """Load G, D and G_ema (what the source has) into a freshly built trainer, on every process
    (each reads the same file, so they agree; G_ema is broadcast from the main process anyway)."""
    source = find_init(path)
    modules = {"G": trainer.G, "D": trainer.D, "G_ema": trainer.G_ema}
    check_source(source, trainer.cfg, modules)
    with torch.no_grad():
        for net, weights in source.weights.items():
            modules[net].load_state_dict(weights)
    return source


def describe(source: InitSource) -> str:
    seen = f" at {source.nimg:,} images" if source.nimg is not None else ""
    fresh = "" if "D" in source.weights else "; D starts fresh (a bare generator has none)"
    return f"initialised {', '.join(sorted(source.weights))} from {source.path}{seen}; optimizers and counters start fresh{fresh}"
