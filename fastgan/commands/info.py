"""`fastgan info`: versions, devices, and what this machine supports."""

from __future__ import annotations

import importlib.metadata
import platform
import shutil


def package_version(name: str) -> str:
    """The installed version of a distribution, or "not installed"."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def run_info() -> None:
    import torch
    from rich.console import Console
    from rich.table import Table

    import fastgan

    table = Table(title="fastgan info", show_header=False)
    table.add_row("fastgan", fastgan.__version__)
    table.add_row("python", platform.python_version())
    table.add_row("torch", torch.__version__ + (f" (CUDA {torch.version.cuda})" if torch.version.cuda else ""))
    for pkg in ("accelerate", "torchvision", "nvidia-dali-cuda130", "nvidia-dali-cuda120", "safetensors"):
        v = package_version(pkg)
        if v != "not installed" or not pkg.startswith("nvidia-dali"):
            table.add_row(pkg, v)
    if package_version("nvidia-dali-cuda130") == "not installed" and package_version("nvidia-dali-cuda120") == "not installed":
        table.add_row("DALI", "not installed (pip install 'fastgan[dali]')")
    table.add_row("CPU threads", str(torch.get_num_threads()))
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            table.add_row(f"cuda:{i}", f"{p.name}, {p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor}")
        table.add_row("bf16", "yes" if torch.cuda.is_bf16_supported() else "no")
    else:
        table.add_row("GPU", "none: training runs on the CPU")
        table.add_row("bf16", "yes (CPU autocast)")
    table.add_row("fp16", "yes (per-network GradScaler)")
    compiler = "cuda (triton)" if torch.cuda.is_available() else ("cpu (C++ via " + (shutil.which("cc") or "no compiler") + ")")
    table.add_row(
        "torch.compile",
        f"inductor on {compiler}"
        if torch.cuda.is_available() or shutil.which("cc")
        else 'no C++ compiler: use compile_backend = "aot_eager"',
    )
    Console().print(table)
