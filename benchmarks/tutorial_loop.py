"""The classic tutorial GAN loop, as the seeds wrote it, timed: the code people start from.

torchvision dataset with ToTensor + Normalize, a DataLoader, fp32, D ending in Sigmoid with
BCELoss, a D step on real then on fake.detach(), a G step with "real" labels, and `.item()` on
both losses every step (the tutorials print them). Same architectures as fastgan's presets, so
its eager baseline can be compared with this:

    python benchmarks/tutorial_loop.py --model dcgan --batch 128 --steps 60
    fastgan bench configs/mnist-dcgan.toml --set data.source=fashion-mnist --batch 128 --ladder eager

Fashion-MNIST comes from /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist),
unpacked into a temporary torchvision root, so nothing is downloaded (--data names another folder
of the four idx .gz files). `--device cuda` runs the same loop on a GPU, as the tutorials'
`.to(device)` versions do, so GPU comparisons are GPU against GPU.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torchvision import datasets, transforms

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


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


def dcgan_models(width: int = 64) -> tuple[nn.Module, nn.Module]:
    G = nn.Sequential(
        nn.Linear(100, 1024, bias=False), nn.BatchNorm1d(1024), nn.ReLU(True),
        nn.Linear(1024, 2 * width * 49, bias=False), nn.BatchNorm1d(2 * width * 49), nn.ReLU(True),
        nn.Unflatten(1, (2 * width, 7, 7)),
        nn.ConvTranspose2d(2 * width, width, 5, 2, padding=2, output_padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(True),
        nn.ConvTranspose2d(width, 1, 5, 2, padding=2, output_padding=1), nn.Tanh(),
    )  # fmt: skip
    D = nn.Sequential(
        nn.Conv2d(1, width, 5, padding=2), nn.LeakyReLU(0.2, True), nn.AvgPool2d(2),
        nn.Conv2d(width, 2 * width, 5, padding=2), nn.LeakyReLU(0.2, True), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(2 * width * 49, 1024), nn.LeakyReLU(0.2, True), nn.Linear(1024, 1), nn.Sigmoid(),
    )  # fmt: skip
    return G, D


def fashion_root(src: Path = DEBIAN) -> Path:
    """A torchvision root with the idx files unpacked where FashionMNIST looks for them."""
    root = Path(tempfile.mkdtemp(prefix="tutorial-"))
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in src.glob("*.gz"):
        with gzip.open(gz, "rb") as src, open(raw / gz.stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return root


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=["mlp", "dcgan"], default="dcgan")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=60, help="timed steps (after 5 warm-up steps)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--width", type=int, default=64, help="dcgan width (fastgan's mnist-dcgan preset: 64)")
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument("--device", default="cpu", help="cpu or cuda (the tutorials' .to(device))")
    p.add_argument("--data", type=Path, default=DEBIAN, help="folder with Fashion-MNIST's four idx .gz files")
    args = p.parse_args()
    device = torch.device(args.device)

    root = fashion_root(args.data)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    dataset = datasets.FashionMNIST(str(root), train=True, download=False, transform=tf)
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch, shuffle=True, num_workers=args.workers, drop_last=True)
    torch.manual_seed(0)
    G, D = mlp_models() if args.model == "mlp" else dcgan_models(args.width)
    G, D = G.to(device), D.to(device)
    criterion = nn.BCELoss()
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))

    step, start, timed_from = 0, 0.0, 5
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
            d_value, g_value = (loss_real + loss_fake).item(), loss_G.item()  # the tutorials print these each step
            step += 1
            if step >= timed_from + args.steps:
                break
    elapsed = time.perf_counter() - start  # .item() above synced every step: the GPU is done
    from fastgan.bench.peaks import cpu_info, device_name

    result = {"loop": "tutorial", "model": args.model, "batch": args.batch, "steps": args.steps,
              "images_per_s": args.steps * args.batch / elapsed, "last_loss_D": d_value, "last_loss_G": g_value,
              "device": device_name(device), "cpu": cpu_info(),
              "torch": torch.__version__, "threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d")}  # fmt: skip
    print(f"tutorial loop ({args.model}, batch {args.batch}, {args.workers} workers): {result['images_per_s']:,.0f} images/s")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
