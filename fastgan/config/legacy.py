"""Config layouts of earlier fastgan versions, still read.

- Keys that moved into a model's own section are read where older presets, `--set` lines and run
  folders put them (`[model] stage_widths = ...` is `[model.r3gan] stage_widths = ...`).
- `V1_TABLES` is the layout of fastgan 0.1's `config.toml`: a run folder's marker from then holds
  the SHA-256 of its start config in that layout, so `--auto-resume` with the command the run
  began with still recognises it (fastgan.run.folder.started_with).
"""

from __future__ import annotations

from typing import Any

from fastgan.errors import UsageError

MOVED: dict[str, str] = {
    "model.width": "model.dcgan.width",
    "model.g_hidden": "model.mlp.g_hidden",
    "model.d_hidden": "model.mlp.d_hidden",
    "model.d_dropout": "model.mlp.d_dropout",
    "model.stage_widths": "model.r3gan.stage_widths",
    "model.stage_blocks": "model.r3gan.stage_blocks",
    "model.expansion": "model.r3gan.expansion",
    "model.group_channels": "model.r3gan.group_channels",
}

# fastgan 0.1's config.toml: its tables and their keys, in order
V1_TABLES: dict[str, tuple[str, ...]] = {
    "model": (
        "name", "z_dim", "latent", "resolution", "channels", "width", "conditional", "num_classes", "d_conditioning",
        "g_hidden", "d_hidden", "d_dropout", "stage_widths", "stage_blocks", "expansion", "group_channels",
    ),
    "loss": ("name", "r1_gamma", "r2_gamma", "reg_every", "gp_weight"),
    "optim.G": ("lr", "betas", "weight_decay"),
    "optim.D": ("lr", "betas", "weight_decay"),
    "data": ("source", "root", "split", "backend", "num_workers", "hflip", "download", "skip_bad"),
    "tricks": (
        "label_smoothing", "label_flip", "instance_noise", "instance_noise_images", "d_batches", "d_steps", "g_latents",
        "ema_halflife_images", "ema_rampup",
    ),
    "augment": ("policy", "p", "target", "speed_images"),
    "train": (
        "seed", "batch_size", "total_images", "precision", "compile", "compile_backend", "channels_last", "tf32",
        "cudnn_benchmark", "cpu", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints", "num_samples",
        "warn_grad_norm", "nonfinite_budget", "timeout_s", "eval_every", "eval_metrics", "eval_samples",
    ),
}  # fmt: skip


def moved_key(dotted: str) -> str:
    """Where a dotted key lives now (`model.width` -> `model.dcgan.width`)."""
    return MOVED.get(dotted, dotted)


def move_legacy_keys(tree: dict[str, Any], where: str) -> dict[str, Any]:
    """A TOML tree with moved keys put in their sections; a key given in both places is refused."""
    model = tree.get("model")
    if not isinstance(model, dict) or not any(f"model.{k}" in MOVED for k in model):
        return tree
    model = {k: (dict(v) if isinstance(v, dict) else v) for k, v in model.items()}
    for old, new in MOVED.items():
        key = old.removeprefix("model.")
        if key not in model:
            continue
        section, name = new.split(".")[1:]
        table = model.setdefault(section, {})
        if not isinstance(table, dict):
            break  # `model.r3gan` is not a table: build() names that mistake
        if name in table:
            raise UsageError(f"{where}: '{old}' and '{new}' are the same key; keep '{new}' only")
        table[name] = model.pop(key)
    return {**tree, "model": model}


def v1_tables(flat: dict[str, Any], defaults: dict[str, Any]) -> dict[str, dict[str, Any]] | None:
    """A flattened config (dotted key -> value) in fastgan 0.1's tables, or None when it sets a key
    that 0.1 did not have away from its default (then it cannot have come from 0.1)."""
    old_of = {new: old for old, new in MOVED.items()}
    tables: dict[str, dict[str, Any]] = {t: {} for t in V1_TABLES}
    for dotted, value in flat.items():
        table, _, key = old_of.get(dotted, dotted).rpartition(".")
        if table in V1_TABLES and key in V1_TABLES[table]:
            tables[table][key] = value
        elif value != defaults.get(dotted):
            return None
    return {t: {k: tables[t][k] for k in keys} for t, keys in V1_TABLES.items()}
