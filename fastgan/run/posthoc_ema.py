"""Post-hoc EMA in a run folder: the snapshots training writes, and G_ema rebuilt from them for any
sigma_rel (the math: fastgan.train.phema).

    RUN/phema/nimg-000123456-s0.050.safetensors   one profile's G parameters at 123,456 images
    RUN/phema/superseded/                         snapshots past the checkpoint a run resumed from
    RUN/posthoc-ema/s0.070/generator.safetensors  `fastgan ema RUN --sigma-rel 0.07`, + config.toml

A snapshot holds G's parameters only (no buffers, no optimizer), with its image count, sigma_rel
and gamma in the safetensors metadata. It is written by the main process every
`train.phema_every` images and at the end; snapshots are kept unless `train.phema_keep` says how
many to keep per profile. A resume moves those written past its checkpoint aside, as it does
sample grids, so the reconstruction only ever sees one path of training.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fastgan import files
from fastgan.config import Config, load_config, to_toml
from fastgan.errors import UsageError
from fastgan.run import checkpoint as ckpt
from fastgan.run.reporter import Reporter
from fastgan.train.build import Trainer
from fastgan.train.ema import recalibrate_batchnorm
from fastgan.train.loop import crossed
from fastgan.train.phema import SIGMA_REL_MAX, fit_error, posthoc_coefficients

SNAPSHOTS = "phema"
EXPORTS = "posthoc-ema"


def sigma_text(sigma_rel: float) -> str:
    """0.05 -> "0.050": three decimals, unless that would not give the value back."""
    text = f"{sigma_rel:.3f}"
    return text if float(text) == sigma_rel else repr(sigma_rel)


def snapshot_name(cur_nimg: int, sigma_rel: float) -> str:
    return f"{ckpt.checkpoint_name(cur_nimg)}-s{sigma_text(sigma_rel)}.safetensors"


@dataclass(frozen=True)
class Snapshot:
    path: Path
    nimg: int
    sigma_rel: float


def parse_snapshot(path: Path) -> Snapshot | None:
    """nimg-000000128-s0.050.safetensors -> Snapshot, else None."""
    stem = path.name.removesuffix(".safetensors")
    head, sep, sigma = stem.partition("-s")
    digits = head.removeprefix("nimg-")
    if not (path.name.endswith(".safetensors") and sep and head.startswith("nimg-") and digits.isdigit()):
        return None
    try:
        return Snapshot(path, int(digits), float(sigma))
    except ValueError:
        return None


def list_snapshots(run_dir: Path) -> list[Snapshot]:
    """The run's snapshots on the path it follows (not superseded), by image count then sigma_rel."""
    folder = run_dir / SNAPSHOTS
    found = [s for p in (folder.iterdir() if folder.is_dir() else []) if (s := parse_snapshot(p)) is not None]
    return sorted(found, key=lambda s: (s.nimg, s.sigma_rel))


# ---------------------------------------------------------------------------- during training


class PhemaSnapshots:
    """Every train.phema_every images and at the end (main process): one snapshot per profile.
    Copying them to the host is a sync, once per snapshot interval."""

    stage = None  # the main process alone: the others wait in the next step's all-reduce

    def __init__(self, trainer: Trainer, run_dir: Path, reporter: Reporter) -> None:
        t = trainer.cfg.train
        self.every, self.keep, self.run_dir, self.reporter = t.phema_every, t.phema_keep, run_dir, reporter

    def due(self, before: int, after: int, final: bool) -> bool:
        return crossed(before, after, self.every) or final

    def __call__(self, trainer: Trainer, final: bool) -> None:
        if not trainer.accelerator.is_main_process:
            return
        from safetensors.torch import save

        phema, n = trainer.step.phema, trainer.cur_nimg
        folder = self.run_dir / SNAPSHOTS
        folder.mkdir(exist_ok=True)
        for k, (sigma_rel, gamma) in enumerate(zip(phema.sigma_rels, phema.gammas, strict=True)):
            weights = phema.weights(k)
            bad = ckpt.nonfinite_tensors(weights)
            if bad:  # nothing non-finite is saved; the reconstruction uses the others
                self.reporter.warn(n, f"post-hoc EMA snapshot sigma_rel {sigma_text(sigma_rel)} not written: {bad[0]} holds inf/NaN")
                continue
            metadata = {"nimg": str(n), "sigma_rel": repr(sigma_rel), "gamma": repr(gamma), "format": "fastgan-phema-1"}
            files.write_atomic(folder / snapshot_name(n, sigma_rel), save(weights, metadata=metadata), files.THEN_RESUME)
        if self.keep > 0:
            prune_snapshots(self.run_dir, self.keep)


def prune_snapshots(run_dir: Path, keep: int) -> list[Path]:
    """Keep the newest `keep` snapshots of each profile; return the ones removed."""
    removed = []
    for sigma_rel in {s.sigma_rel for s in list_snapshots(run_dir)}:
        mine = [s for s in list_snapshots(run_dir) if s.sigma_rel == sigma_rel]
        for old in mine[:-keep]:
            old.path.unlink(missing_ok=True)
            removed.append(old.path)
    return removed


def supersede_snapshots(run_dir: Path, cur_nimg: int) -> int:
    """Resuming at `cur_nimg`: move the snapshots an earlier run wrote past it to phema/superseded/
    (kept, never used), so a rollback with --from cannot mix two paths of training."""
    moved = 0
    for s in list_snapshots(run_dir):
        if s.nimg > cur_nimg:
            (s.path.parent / ckpt.SUPERSEDED).mkdir(exist_ok=True)
            os.replace(s.path, files.unused_name(s.path.parent / ckpt.SUPERSEDED / s.path.name))
            moved += 1
    return moved


# ---------------------------------------------------------------------------- after training


def check_sigma_rel(sigma_rel: float, flag: str = "--sigma-rel") -> None:
    if not 0 < sigma_rel <= SIGMA_REL_MAX:
        raise UsageError(f"{flag} {sigma_rel:g}: must be in (0, {SIGMA_REL_MAX:.3f}]; EDM2's best lie around 0.05-0.15, e.g. {flag} 0.07")


def parse_sigma_rels(text: str) -> list[float]:
    """'0.05,0.1' -> [0.05, 0.1], each checked, repeats dropped."""
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--sigma-rel {text}: give numbers separated by commas, e.g. --sigma-rel 0.05,0.07,0.10") from None
    if not values:
        raise UsageError("--sigma-rel is empty; give one or more, e.g. --sigma-rel 0.05,0.07,0.10")
    for v in values:
        check_sigma_rel(v)
    return list(dict.fromkeys(values))


@dataclass(frozen=True)
class Reconstruction:
    sigma_rel: float
    nimg: int  # the time the profile ends at: the newest snapshot's image count
    snapshots: list[Snapshot]
    coefficients: np.ndarray  # one per snapshot, summing to 1
    fit_error: float  # ||sum x_i p_i - p|| / ||p||: how well the snapshots span the profile asked for

    def describe(self) -> str:
        counts: dict[float, int] = {}
        for s in self.snapshots:
            counts[s.sigma_rel] = counts.get(s.sigma_rel, 0) + 1
        kinds = ", ".join(f"{c} x {sigma_text(s)}" for s, c in sorted(counts.items()))
        return (
            f"sigma_rel {sigma_text(self.sigma_rel)} at {self.nimg:,} images from {len(self.snapshots)} snapshots ({kinds}); "
            f"profile fit error {100 * self.fit_error:.2g}%"
        )


def plan_reconstruction(snapshots: list[Snapshot], sigma_rel: float, nimg: int | None = None) -> Reconstruction:
    """The least-squares weights of `snapshots` (those up to `nimg`, default the newest) for `sigma_rel`."""
    assert snapshots
    nimg = max(s.nimg for s in snapshots) if nimg is None else nimg
    used = [s for s in snapshots if s.nimg <= nimg]
    nimgs, sigma_rels = [s.nimg for s in used], [s.sigma_rel for s in used]
    x = posthoc_coefficients(nimgs, sigma_rels, nimg, sigma_rel)
    return Reconstruction(sigma_rel, nimg, used, x, fit_error(nimgs, sigma_rels, nimg, sigma_rel, x))


def weighted_sum(terms: Iterable[tuple[dict[str, torch.Tensor], float]]) -> dict[str, torch.Tensor]:
    """sum_i x_i theta_i, accumulated in float64 (the weights can be large and of both signs),
    one theta_i needed at a time; float32 on the CPU."""
    total: dict[str, torch.Tensor] = {}
    for weights, x in terms:
        for name, value in weights.items():
            term = value.to(torch.float64) * float(x)
            total[name] = total[name] + term if name in total else term
    return {name: value.to(torch.float32) for name, value in total.items()}


def combine(plan: Reconstruction) -> dict[str, torch.Tensor]:
    """The reconstruction's weights from its snapshot files, one file in memory at a time."""
    from fastgan.run.generator import load_safetensors

    return weighted_sum((load_safetensors(s.path), x) for s, x in zip(plan.snapshots, plan.coefficients, strict=True))


def snapshot_run(path: Path) -> tuple[Path, Config, list[Snapshot]]:
    """(run folder, its config, its snapshots) for `path`, or one line saying what is missing."""
    run_dir = path
    if path.is_file() or ckpt.run_of_checkpoint(path) is not None:
        run = ckpt.run_of_checkpoint(path) if path.is_dir() else path.parent
        raise UsageError(f"{path}: --sigma-rel rebuilds G_ema from a run's snapshots; give the run folder, e.g. {run}")
    if not (run_dir / "config.toml").is_file():
        raise UsageError(f"{path}: not a run folder (no config.toml); post-hoc EMA needs the run folder, which holds {SNAPSHOTS}/")
    snapshots = list_snapshots(run_dir)
    if not snapshots:
        raise UsageError(
            f"{path}: no post-hoc EMA snapshots in {run_dir / SNAPSHOTS}; train with --set train.phema_every=N "
            "(images between snapshots) to write them"
        )
    return run_dir, load_config(run_dir / "config.toml"), snapshots


def reconstruct_generator(path: Path, sigma_rel: float, device: torch.device) -> tuple[Config, nn.Module, str, Reconstruction]:
    """(config, G_ema for `sigma_rel` on `device` with BatchNorm statistics of its own, a
    description, the plan) from a run folder's snapshots."""
    from fastgan.models import build_models
    from fastgan.run.generator import find_generator

    check_sigma_rel(sigma_rel)
    run_dir, cfg, snapshots = snapshot_run(path)
    plan = plan_reconstruction(snapshots, sigma_rel)
    weights = combine(plan)
    _, base, _ = find_generator(run_dir)  # buffers (BatchNorm's are recomputed below) from the run's G_ema
    G, _ = build_models(cfg.model)
    try:
        G.load_state_dict({**base, **weights})
    except RuntimeError as e:
        raise UsageError(f"{run_dir / SNAPSHOTS}: snapshots do not match the run's config.toml ({str(e).splitlines()[0]})") from None
    bad = ckpt.nonfinite_tensors(dict(G.named_parameters()))
    if bad:
        raise UsageError(f"{run_dir}: the reconstruction for sigma_rel {sigma_text(sigma_rel)} holds inf/NaN (e.g. {bad[0]})")
    G = G.to(device).eval().requires_grad_(False)
    m = cfg.model
    recalibrate_batchnorm(
        G, z_dim=m.z_dim, latent=m.latent, num_classes=m.num_classes if m.conditional else 1,
        seed=(cfg.train.seed * 1_000_003 + plan.nimg) % 2**62, device=device,
    )  # fmt: skip
    return cfg, G, f"{run_dir} (post-hoc EMA, {plan.describe()})", plan


def load_g_ema(path: Path, sigma_rel: float | None, device: torch.device) -> tuple[Config, nn.Module, str]:
    """(config, G, description): the G_ema of a run, checkpoint or safetensors file (on the CPU),
    or with `sigma_rel` the one rebuilt from a run folder's snapshots (on `device`)."""
    from fastgan.run.generator import load_generator

    if sigma_rel is None:
        return load_generator(path)
    cfg, G, where, _ = reconstruct_generator(path, sigma_rel, device)
    return cfg, G, where


def default_export(run_dir: Path, sigma_rel: float) -> Path:
    return run_dir / EXPORTS / f"s{sigma_text(sigma_rel)}" / "generator.safetensors"


def export_generator(G: nn.Module, cfg: Config, out: Path, plan: Reconstruction) -> None:
    """`out` (a .safetensors file) and config.toml beside it, as `fastgan sample`/`eval` read them."""
    from safetensors.torch import save

    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in G.state_dict().items()}
    metadata = {"sigma_rel": repr(plan.sigma_rel), "nimg": str(plan.nimg), "snapshots": str(len(plan.snapshots))}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise files.storage_error(e, out.parent) from None
    files.write_atomic(out, save(tensors, metadata=metadata))
    files.write_atomic(out.parent / "config.toml", to_toml(cfg))
