"""The typed configuration: one frozen dataclass per component, each key with its default and
what it means (docs/config.md is made from this file by scripts/config_docs.py).

A preset is a small diff from these defaults. Keys that belong to one model family live in its
own section (`[model.r3gan]`, `[model.mlp]`, `[model.dcgan]`). This module must not import torch,
so that `fastgan --help` stays instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def choice(default: str, *choices: str, doc: str = "") -> Any:
    """A string field restricted to `choices` (checked when the config is loaded)."""
    return field(default=default, metadata={"choices": choices, "doc": doc})


@dataclass(frozen=True)
class DCGANConfig:
    """`[model.dcgan]`: the DCGAN family, `dcgan` and `dcgan28`."""

    width: int = 64  # channels of the widest D layer, G mirrors it


@dataclass(frozen=True)
class MLPConfig:
    """`[model.mlp]`: the MLP GAN of the 2014 paper and the classic MNIST tutorials."""

    g_hidden: tuple[int, ...] = (256, 512, 1024)  # G's hidden layer sizes, z to image
    d_hidden: tuple[int, ...] = (1024, 512, 256)  # D's hidden layer sizes, image to logit
    d_dropout: float = 0.3  # dropout after each of D's hidden layers


@dataclass(frozen=True)
class R3GANConfig:
    """`[model.r3gan]`: R3GAN's normalisation-free residual nets (arXiv:2501.05441)."""

    # One entry per stage, G's order (the basis first, then each doubling); D mirrors. The number of
    # stages sets the basis: resolution / 2^(stages - 1) px (7 for 28 px with 3 stages).
    stage_widths: tuple[int, ...] = (128, 128, 64)  # channels of each stage
    stage_blocks: tuple[int, ...] = (1, 1, 1)  # residual blocks in each stage
    expansion: int = 2  # a block's inner width is expansion x the stage width
    group_channels: int = 16  # channels per group of the grouped 3x3 conv


@dataclass(frozen=True)
class ModelConfig:
    name: str = "dcgan28"  # mlp | dcgan28 | dcgan | tutorial-dcgan | r3gan (see fastgan.models)
    z_dim: int = 100  # length of the latent z
    latent: str = choice("gaussian", "gaussian", "uniform")  # z's distribution (fastgan.latents)
    resolution: int = 28  # output side in pixels; each model lists the sides it can make
    channels: int = 1  # 1 (grey) or 3 (RGB)
    conditional: bool = False  # class-conditional G and D (labels from the data source)
    num_classes: int = 10  # classes of a conditional model
    # how a conditional D takes the label: a projection of its features (Miyato & Koyama 2018) or
    # label planes concatenated to the image
    d_conditioning: str = choice("projection", "projection", "concat")
    dcgan: DCGANConfig = DCGANConfig()  # keys of one model family each: only that family reads them
    mlp: MLPConfig = MLPConfig()
    r3gan: R3GANConfig = R3GANConfig()


@dataclass(frozen=True)
class LossConfig:
    name: str = "nonsaturating"  # see fastgan.losses.LOSSES (rpgan: R3GAN's relativistic loss)
    r1_gamma: float = 0.0  # R1 penalty weight on real images (Mescheder et al. 2018); 0 = off
    r2_gamma: float = 0.0  # R2: the same penalty on generated images (R3GAN uses r1_gamma = r2_gamma); 0 = off
    # R1/R2 run every reg_every D steps as a D step of their own, scaled by reg_every, with Adam's
    # lr and betas adjusted by r/(r+1) (lazy regularisation, StyleGAN2, arXiv:1912.04958); that
    # pass is eager, so the main step can be compiled. 1 = in every D step's loss (no compile).
    reg_every: int = 16
    gp_weight: float = 10.0  # wgan-gp only: gradient penalty weight (Gulrajani et al. 2017), every D step


@dataclass(frozen=True)
class AdamConfig:
    lr: float = 2e-4  # Adam's learning rate (Radford et al. 2015)
    betas: tuple[float, float] = (0.5, 0.999)  # Radford et al. 2015: beta1 = 0.5
    weight_decay: float = 0.0  # Adam's L2 weight decay


@dataclass(frozen=True)
class OptimConfig:
    G: AdamConfig = AdamConfig()
    D: AdamConfig = AdamConfig()


@dataclass(frozen=True)
class DataConfig:
    # mnist | fashion-mnist | cifar10 | folder:PATH | npy:PATH
    source: str = "fashion-mnist"
    root: str = "data"  # where torchvision datasets are looked for and downloaded to
    split: str = choice("train", "train", "test")  # which split of a torchvision dataset to train on
    backend: str = "tensor"  # see fastgan.data.BACKENDS
    num_workers: int = 2  # torchvision backend: DataLoader worker processes
    hflip: bool = False  # random horizontal flip (backends that augment)
    download: bool = True  # let torchvision download a missing dataset
    skip_bad: bool = False  # folder sources: skip undecodable files instead of failing


@dataclass(frozen=True)
class TricksConfig:
    """Stabilisers from soumith/ganhacks; all off unless a preset turns them on."""

    label_smoothing: float = 0.0  # one-sided: D's real target becomes 1 - s (ganhacks #6)
    label_flip: float = 0.0  # probability of swapping a D target real<->fake (ganhacks #6)
    instance_noise: float = 0.0  # std of gaussian noise on D inputs, in [-1, 1] image units
    instance_noise_images: int = 0  # images over which that std decays linearly to 0
    d_batches: str = choice("separate", "separate", "concat")  # ganhacks #4: separate batches
    d_steps: int = 1  # D steps per G step, each on a fresh real batch
    # The G phase's latents: "fresh" draws new ones; "reuse" takes the last D phase's z and labels,
    # as the classic MNIST GAN tutorials do (they regenerate the D step's images for the G step);
    # "keep" reuses them and the D phase's G forward itself, with its graph: the same losses and
    # gradients as "reuse" with one G forward fewer (G's BatchNorm running statistics then move
    # once per step; fastgan.train.generated)
    g_latents: str = choice("fresh", "fresh", "reuse", "keep")
    ema_halflife_images: int = 10_000  # G_ema half-life in images seen (Karras et al.); 0 = copy
    ema_rampup: float = 0.05  # half-life is at most this fraction of images seen (StyleGAN2-ADA); 0 = off
    # FreezeD (Mo et al. 2020, arXiv:2002.10964): D's first N blocks from the input take no gradient,
    # for fine-tuning with train.init (fastgan train CONFIG --init RUN); 0 = off
    freeze_d: int = 0


@dataclass(frozen=True)
class AugmentConfig:
    """Differentiable augmentation of every image D sees (fastgan.augment); off by default."""

    # DiffAugment ops, comma-separated, applied in this order (Zhao et al. 2020, arXiv:2006.10738):
    # color, translation, cutout. "" = off.
    policy: str = ""
    p: float = 1.0  # probability that each op is applied to an image; with target > 0, where p starts (0 is usual)
    # ADA (Karras et al. 2020, arXiv:2006.06676): p adapts so that E[sign(D(real))] stays at target
    # (0.6 in the paper). 0 = p stays fixed.
    target: float = 0.0
    speed_images: int = 500_000  # ADA: images over which p can move from 0 to 1


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0  # seeds G's and D's initialisation, the latents, the data order and the sample grid
    batch_size: int = 64  # global batch: split evenly across processes
    # Gradient accumulation: each process's share of the batch runs as this many micro-batches per
    # phase, with one optimizer step; BatchNorm sees micro-batches (docs/training-extras.md)
    accumulate: int = 1
    # Fine-tuning: a run folder, checkpoint folder or generator.safetensors whose G, D and G_ema start
    # this new run (set by fastgan train CONFIG --init PATH); optimizers and counters start fresh; "" = off
    init: str = ""
    total_images: int = 300_000  # real images shown to D over the whole run
    # auto: bf16 where the hardware computes in it (CUDA GPUs from Ampere on; CPUs with avx512_bf16
    # or AMX), else no; elsewhere bf16 is emulated and ~20x slower (docs/NOTES.md). A checkpoint
    # records what it computed in, and a resume must compute in the same (fastgan.run.resume_rules).
    precision: str = choice("no", "no", "bf16", "fp16", "auto")
    # torch.compile of G, D and the losses; reduce-overhead adds CUDA graphs (GPUs only)
    compile: str = choice("off", "off", "default", "reduce-overhead", "max-autotune")
    compile_backend: str = "inductor"  # tests use "aot_eager" (no C++ build)
    channels_last: bool = False  # NHWC memory format for G and D (faster convolutions on some hardware)
    # TF32 tensor cores for fp32 matmuls AND convolutions on NVIDIA GPUs (one switch for both;
    # PyTorch's own defaults differ: off for matmuls, on for cuDNN convs). MFU uses the matching peak.
    tf32: bool = True
    # cuDNN autotuning (torch.backends.cudnn.benchmark): safe because every batch has the same
    # shape; picks the fastest convolution algorithms once, at the cost of bitwise repeatability.
    cudnn_benchmark: bool = True
    cpu: bool = False  # train on the CPU even if a GPU is present
    log_every: int = 10_000  # images between reads of the device-side stats
    sample_every: int = 50_000  # images between sample grids
    checkpoint_every: int = 100_000  # images between checkpoints
    keep_checkpoints: int = 2  # newest complete checkpoints kept
    num_samples: int = 64  # images in each sample grid (one row per class if conditional)
    warn_grad_norm: float = 100.0  # ganhacks: a mean gradient norm above this (per log interval) is a failure signal
    # Images of steps with a non-finite loss (or gradients outside fp16, or weights) in a row before
    # the run stops with exit code 3; -1 = one log interval. Checked at log intervals, so a diverged
    # run stops within two of them; a run that ends inside a streak of over half its images stops
    # the same way (fastgan.run.guard).
    nonfinite_budget: int = -1
    # Seconds one stage of a multi-process run may last before fastgan ends it as stalled, with one
    # line and exit 5 (fastgan.run.peers): above the longest legitimate one (in-training eval on the
    # main process, a checkpoint write, the first step's compile). The process groups' own timeouts
    # (Accelerate's InitProcessGroupKwargs) come 30 s later.
    timeout_s: int = 1800
    eval_every: int = 0  # images between in-training metrics on the main process; 0 = off
    # fd | kid | pr (fastgan.metrics.METRICS). The first distance (fd or kid) picks the best checkpoint:
    # keep eval_every a multiple of checkpoint_every so every eval has a checkpoint to keep.
    eval_metrics: tuple[str, ...] = ("fd",)
    eval_samples: int = 5000  # generated images per eval, and real test images (up to the split's size)
    # Post-hoc EMA (Karras et al. 2024, docs/posthoc-ema.md): images between snapshots of power-function
    # EMAs of G in RUN/phema/, from which `fastgan ema RUN --sigma-rel S` rebuilds G_ema for any S; 0 = off
    # (no snapshots, no tracking, checkpoints as before). More snapshots fit the profiles better: 100+ per run.
    phema_every: int = 0
    phema_sigma_rels: tuple[float, ...] = (0.05, 0.10)  # the profiles tracked (EDM2's two); fixed for a run
    phema_keep: int = 0  # newest snapshots kept per profile; 0 = all (the reconstruction wants them all)


@dataclass(frozen=True)
class ValueSchedule:
    """`[schedule.<value>]`: one value as a function of images seen (fastgan.train.schedule): a
    linear warm-up from 0 to `start` over `warmup_images`, then `shape` from `start` to `end`,
    reaching `end` at `length_images` images seen (warm-up included), then held there. A value
    whose section is absent stays at its configured value, as before schedules existed."""

    shape: str = choice("cosine", "cosine", "linear", "constant")  # constant: start after the warm-up, for ever
    start: float = -1.0  # the value after the warm-up; -1 = the configured one (optim.G.lr for lr_G, ...)
    end: float = -1.0  # the value from length_images on; -1 = start (no decay)
    warmup_images: int = 0  # images of linear warm-up from 0 to start; 0 = none
    length_images: int = 0  # images seen when the value reaches end (R3GAN's CIFAR-10 recipe: 20_000_000)


@dataclass(frozen=True)
class ScheduleConfig:
    """`[schedule]`: warm-up and decay of training values over images seen (docs/schedules.md).
    The start of each is the configured value unless its `start` says otherwise."""

    lr_G: ValueSchedule = ValueSchedule()  # schedules optim.G.lr
    lr_D: ValueSchedule = ValueSchedule()  # schedules optim.D.lr (lazy R1/R2's adjustment applies to the scheduled value)
    beta2_G: ValueSchedule = ValueSchedule()  # schedules optim.G.betas[1]
    beta2_D: ValueSchedule = ValueSchedule()  # schedules optim.D.betas[1]
    r1_gamma: ValueSchedule = ValueSchedule()  # schedules loss.r1_gamma (needs loss.r1_gamma > 0)
    r2_gamma: ValueSchedule = ValueSchedule()  # schedules loss.r2_gamma (needs loss.r2_gamma > 0)
    ema_halflife_images: ValueSchedule = ValueSchedule()  # schedules tricks.ema_halflife_images (ema_rampup still caps it)
    # schedules augment.p with a fixed p; with ADA (augment.target > 0) a ceiling on ADA's p, which ADA still moves below it
    augment_p: ValueSchedule = ValueSchedule()


@dataclass(frozen=True)
class Config:
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    optim: OptimConfig = OptimConfig()
    data: DataConfig = DataConfig()
    tricks: TricksConfig = TricksConfig()
    augment: AugmentConfig = AugmentConfig()
    train: TrainConfig = TrainConfig()
    schedule: ScheduleConfig = ScheduleConfig()
