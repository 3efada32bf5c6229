"""`fastgan info`: versions, the CPU and devices, what this machine supports, and which optional
parts are installed (each with the pip line that adds it)."""

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


# Parts some commands need: what they add, the distributions that provide them, how to install them.
OPTIONAL = (
    ("DALI (data.backend = dali)", ("nvidia-dali-cuda130", "nvidia-dali-cuda120"), "pip install 'fastgan[dali]'"),
    ("TensorBoard (run logs)", ("tensorboard",), "pip install tensorboard"),
    ("matplotlib (fastgan report)", ("matplotlib",), "pip install 'fastgan[report]'"),
    ("onnx (fastgan export)", ("onnx",), "pip install 'fastgan[export]'"),
    ("onnxruntime (fastgan export)", ("onnxruntime",), "pip install 'fastgan[export]'"),
)


def run_info() -> None:
    import torch
    from rich.console import Console
    from rich.table import Table

    import fastgan
    from fastgan.hardware import cpu_info, kernels_may_use_bf16_units

    table = Table(title="fastgan info", show_header=False)
    table.add_row("fastgan", fastgan.__version__)
    table.add_row("python", platform.python_version())
    table.add_row("torch", torch.__version__ + (f" (CUDA {torch.version.cuda})" if torch.version.cuda else ""))
    for pkg in ("accelerate", "torchvision", "safetensors"):
        table.add_row(pkg, package_version(pkg))
    for label, names, install in OPTIONAL:
        found = [f"{v} ({name})" if len(names) > 1 else v for name in names if (v := package_version(name)) != "not installed"]
        table.add_row(label, ", ".join(found) or f"not installed ({install})")
    cpu = cpu_info()
    table.add_row("CPU", cpu["model"] or platform.processor() or "unknown")
    table.add_row("CPU bf16 units", cpu["bf16_units"])
    table.add_row("CPU threads", str(torch.get_num_threads()))
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            table.add_row(f"cuda:{i}", f"{p.name}, {p.total_memory / 2**30:.0f} GiB, sm_{p.major}{p.minor}")
        table.add_row("bf16", "yes" if torch.cuda.is_bf16_supported() else "no")
    else:
        table.add_row("GPU", "none: training runs on the CPU")
        if cpu["bf16_units"].startswith("none"):
            how = "emulated: slower than fp32 here"
        elif not kernels_may_use_bf16_units():
            how = "emulated: ATEN_CPU_CAPABILITY or ONEDNN_MAX_CPU_ISA holds the kernels below the bf16 units"
        else:
            how = 'in hardware: precision = "auto" uses it'
        table.add_row("bf16", f"yes (CPU autocast, {how})")
    table.add_row("fp16", "yes (per-network GradScaler)")
    compiler = "cuda (triton)" if torch.cuda.is_available() else ("cpu (C++ via " + (shutil.which("cc") or "no compiler") + ")")
    table.add_row(
        "torch.compile",
        f"inductor on {compiler}"
        if torch.cuda.is_available() or shutil.which("cc")
        else 'no C++ compiler: use compile_backend = "aot_eager"',
    )
    Console().print(table)
