"""The classic MNIST GAN tutorial loops, as the tutorials wrote them, timed: the code people start from.

`--model dcgan` is the classic MNIST DCGAN tutorial (PyTorch, noise 96): its model exactly
(fastgan.models.tutorial_dcgan, whose layer list tests/unit/test_models.py checks against the tutorial),
96-dim uniform noise in [-1, 1], and its loop: D scores the real batch and G(noise), the D loss
is BCE on logits, `backward` runs through G too (the tutorial does not detach), then the G step
*regenerates* the images from the same noise and scores them again. The tutorial leaves the
optimiser and batch out; the series uses Adam(2e-4, betas (0.5, 0.999)) and batch 128.
torchvision data with ToTensor + Normalize(0.5, 0.5) and a DataLoader with the default
num_workers = 0, fp32, no compile.

`--model mlp` is the classic MNIST MLP GAN tutorial (the 2014 paper's GAN, hidden 256): D ends in Sigmoid with BCELoss, a D step on real
then fake.detach(), a G step with "real" labels, `.item()` on both losses every step.

    python benchmarks/tutorial_loop.py --model dcgan --batch 128 --steps 60
    fastgan bench configs/mnist-dcgan.toml --set data.source=fashion-mnist --batch 128

Fashion-MNIST comes from /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist),
unpacked into a temporary torchvision root, so nothing is downloaded (--data names another folder
of the four idx .gz files). `--device cuda` runs the same loop on a GPU, as the tutorials'
`.to(device)` versions do, so GPU comparisons are GPU against GPU. `TutorialDCGAN` is the loop
as an object, so benchmarks/time_to_quality.py can train it with the clock stopped for evals.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn
from torchvision import datasets, transforms

from fastgan.config import ModelConfig
from fastgan.models import build_models

DEBIAN = Path("/usr/share/datasets/fashion-mnist")
NOISE_DIM = 96  # the tutorial's noise_size
SEED_MODEL = ModelConfig(name="tutorial-dcgan", z_dim=NOISE_DIM, latent="uniform")  # what fastgan's mnist-dcgan preset trains


def mlp_models() -> tuple[nn.Module, nn.Module]:
    G = nn.Sequential(
        nn.Linear(100, 256), nn.LeakyReLU(0.2), nn.Linear(256, 512), nn.LeakyReLU(0.2),
        nn.Linear(512, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)),
    )  # fmt: skip
    D = nn.Sequential(
        nn.Flatten(), nn.Linear(784, 1024), nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(1024, 512), nn.LeakyReLU(0.2),
        nn.Dropout(0.3), nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(256, 1), nn.Sigmoid(),
    )  # fmt: skip
    return G, D


def fashion_root(src: Path = DEBIAN) -> Path:
    """A torchvision root with the idx files unpacked where FashionMNIST looks for them."""
    root = Path(tempfile.mkdtemp(prefix="tutorial-"))
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in src.glob("*.gz"):
        with gzip.open(gz, "rb") as src_file, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src_file, dst)
    return root


def tutorial_loader(root: Path, batch: int, workers: int) -> torch.utils.data.DataLoader:
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    dataset = datasets.FashionMNIST(str(root), train=True, download=False, transform=tf)
    return torch.utils.data.DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)


class TutorialDCGAN:
    """The DCGAN tutorial's loop, one step per call. `G(z, labels)` is fastgan's model, so
    fastgan's metrics can score it; the tutorial has no EMA, so its G is what gets scored."""

    def __init__(self, *, batch: int = 128, workers: int = 0, seed: int = 0, device: str = "cpu", data: Path = DEBIAN) -> None:
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.root = fashion_root(data)
        self.loader = tutorial_loader(self.root, batch, workers)
        G, D = build_models(SEED_MODEL)
        self.G, self.D = G.to(self.device), D.to(self.device)
        self.no_labels = torch.zeros(batch, dtype=torch.long, device=self.device)  # fastgan's models take labels; unused here
        self.bce = nn.BCEWithLogitsLoss()
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.batches: Iterator[tuple[torch.Tensor, torch.Tensor]] = iter(())
        self.nimg = 0
        self.losses = (torch.zeros(()), torch.zeros(()))

    def next_batch(self) -> torch.Tensor:
        try:
            real, _ = next(self.batches)
        except StopIteration:
            self.batches = iter(self.loader)
            real, _ = next(self.batches)
        return real.to(self.device)

    def step(self) -> None:
        real = self.next_batch()
        b, y = real.size(0), self.no_labels
        logits_real = self.D(real, y)
        noise = (torch.rand(b, NOISE_DIM, device=self.device) - 0.5) / 0.5  # uniform in [-1, 1]
        logits_fake = self.D(self.G(noise, y), y)
        ones, zeros = torch.ones_like(logits_real), torch.zeros_like(logits_real)
        d_loss = self.bce(logits_real, ones) + self.bce(logits_fake, zeros)
        self.opt_D.zero_grad()
        d_loss.backward()  # through G as well: the tutorial does not detach
        self.opt_D.step()
        g_loss = self.bce(self.D(self.G(noise, y), y), ones)  # the same noise, images made again
        self.opt_G.zero_grad()
        g_loss.backward()
        self.opt_G.step()
        self.nimg += b
        self.losses = (d_loss.detach(), g_loss.detach())  # the tutorial prints them every 250 steps

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def time_mlp(args: argparse.Namespace, device: torch.device) -> tuple[float, float, float]:
    """The MLP GAN tutorial's loop; returns (images/s, last D loss, last G loss)."""
    root = fashion_root(args.data)
    loader = tutorial_loader(root, args.batch, args.workers)
    torch.manual_seed(0)
    G, D = mlp_models()
    G, D = G.to(device), D.to(device)
    criterion = nn.BCELoss()
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    step, start, timed_from, d_value, g_value = 0, 0.0, 5, 0.0, 0.0
    while step < timed_from + args.steps:
        for real, _ in loader:
            if step == timed_from:
                start = time.perf_counter()
            real = real.to(device)
            b = real.size(0)
            ones, zeros = torch.ones(b, 1, device=device), torch.zeros(b, 1, device=device)
            opt_D.zero_grad()
            loss_real = criterion(D(real), ones)
            fake = G(torch.randn(b, 100, device=device))
            loss_fake = criterion(D(fake.detach()), zeros)
            (loss_real + loss_fake).backward()
            opt_D.step()
            opt_G.zero_grad()
            loss_G = criterion(D(fake), ones)
            loss_G.backward()
            opt_G.step()
            d_value, g_value = (loss_real + loss_fake).item(), loss_G.item()  # these tutorials print them each step
            step += 1
            if step >= timed_from + args.steps:
                break
    elapsed = time.perf_counter() - start  # .item() above synced every step: the GPU is done
    shutil.rmtree(root, ignore_errors=True)
    return args.steps * args.batch / elapsed, d_value, g_value


def time_dcgan(args: argparse.Namespace, device: torch.device) -> tuple[float, float, float]:
    loop = TutorialDCGAN(batch=args.batch, workers=args.workers, device=str(device), data=args.data)
    for _ in range(5):  # warm-up
        loop.step()
    start = time.perf_counter()
    for _ in range(args.steps):
        loop.step()
    d_value, g_value = (float(v) for v in loop.losses)  # a sync: the GPU is done
    elapsed = time.perf_counter() - start
    loop.close()
    return args.steps * args.batch / elapsed, d_value, g_value


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["mlp", "dcgan"], default="dcgan")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=60, help="timed steps (after 5 warm-up steps)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers (the tutorials' default: 0)")
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument("--device", default="cpu", help="cpu or cuda (the tutorials' .to(device))")
    p.add_argument("--data", type=Path, default=DEBIAN, help="folder with Fashion-MNIST's four idx .gz files")
    args = p.parse_args()
    device = torch.device(args.device)
    from fastgan.bench.peaks import device_name
    from fastgan.hardware import cpu_info

    rate, d_value, g_value = (time_mlp if args.model == "mlp" else time_dcgan)(args, device)
    result = {"loop": "tutorial", "model": args.model, "batch": args.batch, "steps": args.steps, "workers": args.workers,
              "images_per_s": rate, "last_loss_D": d_value, "last_loss_G": g_value,
              "device": device_name(device), "cpu": cpu_info(), "loadavg": Path("/proc/loadavg").read_text().split()[:3],
              "torch": torch.__version__, "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    print(f"tutorial loop ({args.model}, batch {args.batch}, {args.workers} workers): {rate:,.0f} images/s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
