"""Checks across config sections, done before anything is written. Each names the option."""

from __future__ import annotations

import math
from typing import Any

from fastgan.config import Config, to_dict
from fastgan.errors import UsageError


def nonfinite_keys(tree: dict[str, Any], prefix: str = "") -> list[str]:
    """`key = value` for values (or elements of them) that are a float inf or NaN: TOML reads `nan` and `inf`."""
    out: list[str] = []
    for k, v in tree.items():
        if isinstance(v, dict):
            out += nonfinite_keys(v, f"{prefix}{k}.")
        elif any(isinstance(x, float) and not math.isfinite(x) for x in (v if isinstance(v, (list, tuple)) else [v])):
            out.append(f"{prefix}{k} = {list(v) if isinstance(v, tuple) else v}")
    return out


def validate(cfg: Config) -> None:
    from fastgan.data.backends import BACKENDS
    from fastgan.losses import get_loss
    from fastgan.models import check_model

    bad = nonfinite_keys(to_dict(cfg))
    if bad:
        raise UsageError(f"{', '.join(bad)}: must be a finite number, not nan or inf")
    check_model(cfg.model)
    loss = get_loss(cfg.loss.name)
    if cfg.data.backend not in BACKENDS:
        raise UsageError(f"data.backend = {cfg.data.backend!r} is not known; choose one of: {', '.join(BACKENDS)}")
    t, tr = cfg.train, cfg.tricks
    positive = {
        "train.batch_size": t.batch_size,
        "train.total_images": t.total_images,
        "train.log_every": t.log_every,
        "train.sample_every": t.sample_every,
        "train.checkpoint_every": t.checkpoint_every,
        "train.num_samples": t.num_samples,
        "tricks.d_steps": tr.d_steps,
        "train.accumulate": t.accumulate,
        "model.z_dim": cfg.model.z_dim,
        "model.dcgan.width": cfg.model.dcgan.width,
    }
    for key, value in positive.items():
        if value <= 0:
            raise UsageError(f"{key} = {value}: must be at least 1")
    check_eval(cfg)
    check_phema(cfg)
    if t.batch_size % t.accumulate:
        raise UsageError(
            f"train.accumulate = {t.accumulate} must divide each process's share of train.batch_size = {t.batch_size}; "
            "choose a divisor, e.g. 2 or 4"
        )
    if tr.freeze_d < 0:
        raise UsageError(f"tricks.freeze_d = {tr.freeze_d}: must be 0 (off) or a number of D blocks")
    if tr.g_latents == "keep" and (tr.d_steps != 1 or t.accumulate != 1 or t.compile == "reduce-overhead"):
        raise UsageError(
            'tricks.g_latents = "keep" holds the D phase\'s G forward for the G phase: it needs tricks.d_steps = 1, '
            'train.accumulate = 1 and no CUDA graphs (train.compile = "reduce-overhead"); use "reuse" otherwise'
        )
    if t.nonfinite_budget < -1:
        raise UsageError(f"train.nonfinite_budget = {t.nonfinite_budget}: must be -1 (one log interval) or a number of images >= 0")
    if t.timeout_s < 1:
        raise UsageError(f"train.timeout_s = {t.timeout_s}: must be at least 1 second (default 1800)")
    if not 0 <= tr.label_smoothing < 1:
        raise UsageError(f"tricks.label_smoothing = {tr.label_smoothing}: must be in [0, 1), e.g. 0.1")
    if not 0 <= tr.label_flip <= 0.5:
        raise UsageError(f"tricks.label_flip = {tr.label_flip}: must be in [0, 0.5], e.g. 0.05")
    if (tr.label_smoothing or tr.label_flip) and not loss.uses_targets:
        raise UsageError(
            f"tricks.label_smoothing/label_flip change D's targets, which loss.name = {cfg.loss.name!r} does not have; "
            "use minimax, nonsaturating or lsgan, or set them to 0"
        )
    if tr.instance_noise < 0 or tr.ema_halflife_images < 0:
        raise UsageError("tricks.instance_noise and tricks.ema_halflife_images must not be negative")
    check_regularisation(cfg)
    check_augment(cfg)
    check_schedules(cfg)
    for net in ("G", "D"):
        opt = getattr(cfg.optim, net)
        if opt.lr <= 0 or not all(0 <= b < 1 for b in opt.betas):
            raise UsageError(f"optim.{net}: lr must be > 0 and betas in [0, 1), got lr={opt.lr} betas={list(opt.betas)}")


def check_regularisation(cfg: Config) -> None:
    """R1/R2 weights and their interval; compile is refused only where the regularisation plan puts
    a penalty in the compiled D phase (lazy R1/R2 run through the eager D)."""
    from fastgan.losses.plan import regularisation_plan

    lc = cfg.loss
    if lc.r1_gamma < 0 or lc.r2_gamma < 0:
        raise UsageError(f"loss.r1_gamma = {lc.r1_gamma}, loss.r2_gamma = {lc.r2_gamma}: must not be negative")
    if lc.reg_every < 1:
        raise UsageError(f"loss.reg_every = {lc.reg_every}: must be at least 1 (1 = in every D step; 16 = lazy, as StyleGAN2)")
    if cfg.train.compile != "off" and not regularisation_plan(lc).compile_ok:
        raise UsageError(
            "R1/R2 in every D step (loss.reg_every = 1) and wgan-gp need double backward in the D phase, which torch.compile "
            'does not support (pytorch/pytorch#91469); set loss.reg_every = 16 (lazy R1/R2 run eagerly) or train.compile = "off"'
        )


def check_augment(cfg: Config) -> None:
    from fastgan.augment import parse_policy

    a = cfg.augment
    parse_policy(a.policy)
    if not 0 <= a.p <= 1:
        raise UsageError(f"augment.p = {a.p}: must be a probability in [0, 1], e.g. 1.0 (DiffAugment) or 0.0 (ADA's start)")
    if not 0 <= a.target < 1:
        raise UsageError(f"augment.target = {a.target}: must be in [0, 1); 0.6 is ADA's, 0 keeps p fixed")
    if a.speed_images <= 0:
        raise UsageError(f"augment.speed_images = {a.speed_images}: must be at least 1, e.g. 500000")
    if a.target > 0 and not a.policy:
        raise UsageError('augment.target > 0 adapts p, but augment.policy is empty; set e.g. augment.policy = "color,translation,cutout"')


# [schedule] sections: the values each may take, and what must be on for it to mean anything.
SCHEDULE_RANGES = {
    "lr_G": (0.0, math.inf, "a learning rate >= 0"),
    "lr_D": (0.0, math.inf, "a learning rate >= 0"),
    "beta2_G": (0.0, 1.0 - 1e-12, "in [0, 1)"),
    "beta2_D": (0.0, 1.0 - 1e-12, "in [0, 1)"),
    "r1_gamma": (0.0, math.inf, ">= 0"),
    "r2_gamma": (0.0, math.inf, ">= 0"),
    "ema_halflife_images": (0.0, math.inf, "a number of images >= 0"),
    "augment_p": (0.0, 1.0, "a probability in [0, 1]"),
}


def check_schedules(cfg: Config) -> None:
    """Each `[schedule.<value>]` a config gives: values in range (-1 = the configured one / start),
    a length after the warm-up, and the thing it schedules switched on."""
    from dataclasses import fields

    from fastgan.config import ValueSchedule

    needs = {
        "r1_gamma": (cfg.loss.r1_gamma > 0, "R1 on: set loss.r1_gamma > 0 (its start)"),
        "r2_gamma": (cfg.loss.r2_gamma > 0, "R2 on: set loss.r2_gamma > 0 (its start)"),
        "augment_p": (bool(cfg.augment.policy), 'augmentation on: set augment.policy, e.g. "color,translation,cutout"'),
    }
    for f in fields(cfg.schedule):
        s: ValueSchedule = getattr(cfg.schedule, f.name)
        if s == ValueSchedule():
            continue
        key = f"schedule.{f.name}"
        on, what = needs.get(f.name, (True, ""))
        if not on:
            raise UsageError(f"{key} schedules a value that is off; it needs {what}")
        low, high, allowed = SCHEDULE_RANGES[f.name]
        for name, v in (("start", s.start), ("end", s.end)):
            if v != -1 and not low <= v <= high:
                raise UsageError(f"{key}.{name} = {v}: must be {allowed}, or -1 ({'the configured value' if name == 'start' else 'start'})")
        if s.warmup_images < 0 or s.length_images < 0:
            raise UsageError(f"{key}: warmup_images and length_images are numbers of images and must not be negative")
        if s.shape == "constant":
            if s.end != -1:
                raise UsageError(f'{key}.end = {s.end}: shape = "constant" holds start; set shape = "cosine" or "linear" to reach end')
        elif s.end == -1:
            raise UsageError(f"{key}: shape = {s.shape!r} needs an end, e.g. {key}.end = ... with {key}.length_images = 20_000_000")
        elif s.length_images <= s.warmup_images:
            raise UsageError(
                f"{key}.length_images = {s.length_images}: the images seen when the value reaches end (warm-up included) "
                f"must be more than warmup_images = {s.warmup_images}"
            )


def check_eval(cfg: Config) -> None:
    """In-training eval keys; metric names are checked even when eval is off, so a typo fails now."""
    from fastgan.metrics import check_metric_names

    t = cfg.train
    try:
        check_metric_names(t.eval_metrics)
    except UsageError as e:
        raise UsageError(f"train.eval_metrics: {e}") from None
    if t.eval_every < 0:
        raise UsageError(f"train.eval_every = {t.eval_every}: must be 0 (off) or a number of images, e.g. 60000")
    if t.eval_every > 0 and not t.eval_metrics:
        raise UsageError('train.eval_every > 0 needs at least one metric in train.eval_metrics, e.g. ["fd"]')
    if t.eval_samples < 10:
        raise UsageError(f"train.eval_samples = {t.eval_samples}: must be at least 10 (FD and KID need a few samples), e.g. 5000")


def check_phema(cfg: Config) -> None:
    """Post-hoc EMA keys; the profiles are checked even when it is off, so a typo fails now."""
    t = cfg.train
    sigma_rel_max = math.sqrt(1 / 12)  # fastgan.train.phema.SIGMA_REL_MAX: a plain average (gamma = 0)
    if t.phema_every < 0:
        raise UsageError(f"train.phema_every = {t.phema_every}: must be 0 (off) or a number of images between snapshots, e.g. 100000")
    if t.phema_keep < 0:
        raise UsageError(f"train.phema_keep = {t.phema_keep}: must be 0 (keep every snapshot) or how many to keep per profile")
    bad = [s for s in t.phema_sigma_rels if not 0 < s <= sigma_rel_max]
    if bad:
        raise UsageError(f"train.phema_sigma_rels: {bad[0]} is not in (0, {sigma_rel_max:.3f}]; EDM2 tracks [0.05, 0.10]")
    if len(set(t.phema_sigma_rels)) != len(t.phema_sigma_rels):
        raise UsageError(f"train.phema_sigma_rels = {list(t.phema_sigma_rels)}: a profile is listed twice")
    if t.phema_every > 0 and not t.phema_sigma_rels:
        raise UsageError("train.phema_every > 0 needs at least one profile in train.phema_sigma_rels, e.g. [0.05, 0.10]")
