"""Dense peak FLOP/s of known devices, for MFU. Unknown devices (this CPU, say) get no MFU.

Vendor dense (no sparsity) figures; the H100 bf16 entry is the ~790 TFLOP/s measured on an
8192^3 bf16 matmul in this workplace, a fairer ceiling than the 989 of the data sheet.
"""

from __future__ import annotations

import torch

# (substring of the CUDA device name, precision) -> FLOP/s
PEAKS: dict[tuple[str, str], float] = {
    ("H100", "bf16"): 790e12,
    ("H100", "fp16"): 790e12,
    ("H100", "no"): 378e12,  # TF32 tensor cores (PyTorch's default for convs), half of bf16 in practice
    ("H200", "bf16"): 790e12,
    ("H200", "fp16"): 790e12,
    ("H200", "no"): 378e12,
    ("A100", "bf16"): 312e12,
    ("A100", "fp16"): 312e12,
    ("A100", "no"): 156e12,
}


def peak_flops(device: torch.device, precision: str) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for (key, prec), value in PEAKS.items():
        if key in name and prec == precision:
            return value
    return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return f"CPU {model or platform.processor()} x{torch.get_num_threads()} threads"
