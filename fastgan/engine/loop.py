"""The training loop: steps until `train.total_images`, with maintenance counted in images.

Between maintenance points the loop only calls the step and advances host-side counters; the
device stats are read (one host sync) once per log interval.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from fastgan.config import to_toml
from fastgan.engine import checkpoint as ckpt
from fastgan.engine.build import Trainer
from fastgan.engine.consistency import sync_from_main
from fastgan.engine.report import Reporter, failure_warnings
from fastgan.samples import display_grid, diversity, fixed_latents, generate_uint8, save_png

STATE_VERSION = 1
COLLAPSE_RATIO = 0.3  # warn when sample diversity falls below this fraction of its best


def crossed(before: int, after: int, every: int) -> bool:
    return after // every > before // every


def train(trainer: Trainer, run_dir: Path, reporter: Reporter) -> None:
    cfg, acc, step = trainer.cfg, trainer.accelerator, trainer.step
    t = cfg.train
    m = cfg.model
    z, labels, row = fixed_latents(t.num_samples, m.z_dim, m.num_classes, m.conditional, t.seed, acc.device, m.latent)
    data = iter(trainer.data)
    # G_ema is not wrapped by DDP: make sure every process starts from the main one's.
    sync_from_main(acc, trainer.G_ema, params=True)
    reporter.start(trainer.cur_nimg)
    last_time, last_nimg = time.perf_counter(), trainer.cur_nimg
    while trainer.cur_nimg < t.total_images:
        before = trainer.cur_nimg
        trainer.train_step(data)
        reporter.advance(trainer.cur_nimg)

        done = trainer.cur_nimg >= t.total_images
        if crossed(before, trainer.cur_nimg, t.log_every) or done:
            values = step.stats.read(lambda x: acc.reduce(x, "mean"), lambda x: acc.reduce(x, "max"))  # syncs
            now = time.perf_counter()
            values["images_per_s"] = (trainer.cur_nimg - last_nimg) / max(now - last_time, 1e-9)
            last_time, last_nimg = now, trainer.cur_nimg
            reporter.log(trainer.cur_nimg, values, failure_warnings(values, cfg))
        sample_now = crossed(before, trainer.cur_nimg, t.sample_every) or done
        save_now = crossed(before, trainer.cur_nimg, t.checkpoint_every) or done
        if sample_now or save_now:
            sync_from_main(acc, trainer.G, trainer.D)  # BatchNorm statistics
            trainer.ready_G_ema()  # statistics of its own, the same on every process
        if sample_now:
            write_samples(trainer, run_dir, reporter, z, labels, row)
        if save_now:
            save_checkpoint(trainer, run_dir)
        for hook in trainer.extra.get("hooks", []):  # e.g. in-training metrics (train.eval_every)
            hook(trainer, before, run_dir, reporter)
    reporter.finish(trainer.cur_nimg)


def write_samples(trainer: Trainer, run_dir: Path, reporter: Reporter, z: torch.Tensor, labels: torch.Tensor, row: int) -> None:
    if not trainer.accelerator.is_main_process:
        return
    images = generate_uint8(trainer.G_ema, z, labels)
    save_png(images, row, run_dir / "samples" / f"{ckpt.checkpoint_name(trainer.cur_nimg)}.png")
    save_png(images, row, run_dir / "samples" / "latest.png")
    reporter.grid(trainer.cur_nimg, display_grid(images, row))  # TensorBoard and samples/timeline.gif
    # ganhacks "track failures early": fixed-z samples that all look alike mean collapse.
    # Collapse is a fall in diversity from its best, not a low value at the start.
    spread = float(diversity(images))  # a sync, once per sample interval
    best = max(trainer.extra.get("best_diversity", 0.0), spread)
    trainer.extra["best_diversity"] = best
    reporter.scalar(trainer.cur_nimg, "sample_diversity", spread)
    if spread < COLLAPSE_RATIO * best:
        reporter.warn(
            trainer.cur_nimg, f"fixed-z samples differ less and less (per-pixel std {spread:.1f}, best {best:.1f}): possible mode collapse"
        )


def training_state(trainer: Trainer) -> dict[str, Any]:
    s = trainer.step
    return {
        "version": STATE_VERSION,
        "cur_nimg": trainer.cur_nimg,
        "G": trainer.G.state_dict(),
        "D": trainer.D.state_dict(),
        "G_ema": trainer.G_ema.state_dict(),
        "opt_G": s.G.opt.state_dict(),
        "opt_D": s.D.opt.state_dict(),
        "scaler_G": s.G.scaler.state_dict(),
        "scaler_D": s.D.scaler.state_dict(),
        "data": trainer.data.state_dict(),
        "latent_gen": s.latent_gen.get_state(),
    }


def save_checkpoint(trainer: Trainer, run_dir: Path) -> None:
    """Every process writes its RNG state; the main one the rest; then it is published."""
    acc = trainer.accelerator
    tmp = ckpt.tmp_dir(run_dir, trainer.cur_nimg)
    if acc.is_main_process:
        ckpt.write_part(tmp / "state.pt", training_state(trainer))
        (tmp / "config.toml").write_text(to_toml(trainer.cfg))
    ckpt.write_part(tmp / f"rng-rank{acc.process_index}.pt", ckpt.rng_state())
    acc.wait_for_everyone()
    if acc.is_main_process:
        ckpt.publish(run_dir, trainer.cur_nimg, trainer.cfg.train.keep_checkpoints)
        ckpt.save_safetensors(trainer.G_ema, run_dir / "generator.safetensors")
    acc.wait_for_everyone()


def restore(trainer: Trainer, path: Path) -> None:
    """Load a checkpoint into a freshly built trainer (the same config, any process count)."""
    from fastgan.errors import UsageError

    state = ckpt.load_state(path)
    s = trainer.step
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
    if state["scaler_G"]:
        s.G.scaler.load_state_dict(state["scaler_G"])
    if state["scaler_D"]:
        s.D.scaler.load_state_dict(state["scaler_D"])
    trainer.data.load_state_dict(state["data"])
    s.latent_gen.set_state(state["latent_gen"])
    trainer.cur_nimg = int(state["cur_nimg"])
    rng = ckpt.load_rng(path, trainer.accelerator.process_index)
    if rng is not None:
        ckpt.set_rng_state(rng)
