"""In-training metrics (`train.eval_every`): FD/KID/PR of G_ema on a fixed latent set, appended to
metrics.jsonl and TensorBoard, with the best checkpoint kept.

The loop calls the hook after each step, after that step's checkpoint, so a best eval that falls
on a checkpoint can point at it. Only the main process computes; the others wait at a barrier
instead of inside the next step's all-reduce. `best.json` in the run folder records the best
eval; its checkpoint (if one was saved at that nimg) holds a `best` marker that pruning respects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from fastgan import files
from fastgan.config import Config
from fastgan.metrics import compute_metrics
from fastgan.metrics.cache import real_features
from fastgan.metrics.evaluate import RealSet, eval_latents, feature_cache_dir, generated_features, metric_options, real_sets
from fastgan.metrics.feature_net import FEATURE_NET_ID, FeatureCNN, load_feature_net
from fastgan.run import checkpoint as ckpt
from fastgan.run.reporter import Reporter
from fastgan.run.sync import main_process_first
from fastgan.train.build import Trainer
from fastgan.train.loop import crossed

# Metrics whose value says which checkpoint is best (lower is better); pr has two values and no
# single direction, so an eval of pr alone records values but keeps no best checkpoint.
BEST_KEYS = ("fd", "kid")
LATENT_SEED_OFFSET = 1_000_003  # eval latents differ from the sample grid's (seeded with train.seed)


class EvalHook:
    """A task of the loop (fastgan.train.loop): due when `train.eval_every` images are crossed,
    and at the end of the run. Built before the run folder exists (so a missing test split is a
    usage error that leaves nothing behind), then attached to the run's folder and reporter."""

    stage = "in-training eval (the main process evaluates while the others wait)"

    def __init__(self, cfg: Config, accelerator: Accelerator) -> None:
        t = cfg.train
        self.cfg = cfg
        self.names = list(t.eval_metrics)
        self.best_key = next((n for n in self.names if n in BEST_KEYS), None)
        # Opened by the main process first (torchvision may download the test split), then by the
        # others, so a missing test split fails everywhere before the run folder exists; only the
        # main process keeps the images.
        real, _ = main_process_first(accelerator, lambda: real_sets(cfg.data, cfg.model, "test", t.eval_samples, floor=False))
        self.real: RealSet | None = real if accelerator.is_main_process else None
        self.real_features: torch.Tensor | None = None
        self.net: FeatureCNN | None = None
        self.latents: tuple[torch.Tensor, torch.Tensor] | None = None
        self.best: dict[str, Any] | None = None
        self.best_loaded = False
        self.run_dir: Path | None = None
        self.reporter: Reporter | None = None

    def attach(self, run_dir: Path, reporter: Reporter) -> EvalHook:
        self.run_dir, self.reporter = run_dir, reporter
        return self

    def due(self, before: int, after: int, final: bool) -> bool:
        return crossed(before, after, self.cfg.train.eval_every) or final

    def __call__(self, trainer: Trainer, final: bool) -> None:
        assert self.run_dir is not None and self.reporter is not None, "attach the hook to the run first"
        acc = trainer.accelerator
        if acc.is_main_process:
            values = self.evaluate(trainer)
            self.reporter.metrics(trainer.cur_nimg, values)
            is_best = self.update_best(self.run_dir, trainer.cur_nimg, values)
            shown = "  ".join(f"{k} {v:.4g}" for k, v in values.items())
            self.reporter.console.print(
                f"[dim]{trainer.cur_nimg:>10,} img[/dim]  eval  {shown}{'  (best)' if is_best else ''}", highlight=False
            )
        acc.wait_for_everyone()

    def evaluate(self, trainer: Trainer) -> dict[str, float]:
        """Main process only. Syncs: the features come back to the CPU, and each metric returns floats."""
        device = trainer.accelerator.device
        if self.net is None:
            self.net = load_feature_net(device)
        if self.real_features is None:
            assert self.real is not None
            self.real_features = real_features(self.real.source, self.real.split, self.real.images, self.net, device, feature_cache_dir())
            self.real = None  # the features are all we need from here on
        if self.latents is None:
            self.latents = eval_latents(self.cfg.train.eval_samples, self.cfg.model, self.cfg.train.seed + LATENT_SEED_OFFSET, device)
        gen = generated_features(trainer.ready_G_ema(), self.net, *self.latents)
        num_smallest = min(len(gen), len(self.real_features))
        return compute_metrics(self.names, self.real_features, gen, metric_options(num_smallest))

    def update_best(self, run_dir: Path, cur_nimg: int, values: dict[str, float]) -> bool:
        """Record `values` in best.json if they beat the best so far; move the checkpoint marker."""
        key = self.best_key
        if key is None:
            return False
        if not self.best_loaded:  # a resumed run continues from its previous best
            self.best, self.best_loaded = self.load_best(run_dir / "best.json", key), True
        if self.best is not None and values[key] >= self.best[key]:
            return False
        name = ckpt.checkpoint_name(cur_nimg)
        folder = run_dir / "checkpoints" / name
        saved = (folder / "state.pt").is_file()
        self.best = {
            "nimg": cur_nimg,
            **values,
            "checkpoint": name if saved else None,  # None: no checkpoint was saved at this nimg
            "metric": key,
            "n": self.cfg.train.eval_samples,
            "feature_net": FEATURE_NET_ID,
        }
        for old in ckpt.list_checkpoints(run_dir):
            (old / ckpt.BEST_MARKER).unlink(missing_ok=True)
        if saved:
            files.write_json(folder / ckpt.BEST_MARKER, self.best, files.THEN_RESUME, indent=None)
        files.write_json(run_dir / "best.json", self.best, files.THEN_RESUME)
        return True

    def load_best(self, path: Path, key: str) -> dict[str, Any] | None:
        """The previous best, if it was measured the same way (metric, sample count, feature net)."""
        if not path.is_file():
            return None
        try:
            best = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        same = best.get("metric") == key and best.get("n") == self.cfg.train.eval_samples and best.get("feature_net") == FEATURE_NET_ID
        return best if same and key in best else None
