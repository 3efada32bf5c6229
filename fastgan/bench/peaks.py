"""Dense peak FLOP/s of known devices, for MFU, and the name a result gives the device. Unknown devices (CPUs) get no MFU.

The bf16/fp16 entries for Hopper are the ~790 TFLOP/s measured on an 8192^3 bf16 matmul in
this workplace (the data sheet says 989); TF32 keeps the data sheet's ratio (half of bf16).
fp32 without TF32 runs on the CUDA cores (67 TFLOP/s on H100 SXM and H200). Which fp32 peak
applies is decided by `train.tf32`, which fastgan sets for matmuls and convolutions alike.
"""

from __future__ import annotations

from typing import Any

import torch

from fastgan.hardware import cpu_info, resolve_precision

# (substring of the CUDA device name, math) -> dense FLOP/s
PEAKS: dict[tuple[str, str], float] = {
    ("H100", "bf16"): 790e12,
    ("H100", "fp16"): 790e12,
    ("H100", "tf32"): 395e12,
    ("H100", "fp32"): 67e12,
    ("H200", "bf16"): 790e12,
    ("H200", "fp16"): 790e12,
    ("H200", "tf32"): 395e12,
    ("H200", "fp32"): 67e12,
    ("A100", "bf16"): 312e12,
    ("A100", "fp16"): 312e12,
    ("A100", "tf32"): 156e12,
    ("A100", "fp32"): 19.5e12,
}


def math_mode(precision: str, tf32: bool) -> str:
    """The tensor math a run's matmuls and convolutions use: bf16, fp16, tf32 or fp32."""
    if precision in ("bf16", "fp16"):
        return precision
    return "tf32" if tf32 else "fp32"


def peak_flops(device: torch.device, precision: str, tf32: bool = True) -> float | None:
    """One device's peak for this precision; MFU divides by it times the number of processes."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    mode = math_mode(precision, tf32)
    for (key, math), value in PEAKS.items():
        if key in name and math == mode:
            return value
    return None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    import platform

    return f"CPU {cpu_info()['model'] or platform.processor()} x{torch.get_num_threads()} threads"


def mfu(flops: int, result: Any, cfg: Any, device: Any, processes: int) -> float | None:
    """Achieved FLOP/s of all processes over the peak of all their devices, for the precision the
    step computes in: `precision = "auto"` is resolved as training resolves it (bf16 on a GPU
    with bf16, else fp32 with or without TF32), not taken for fp32."""
    peak = peak_flops(device, resolve_precision(cfg.train.precision, device), cfg.train.tf32)
    if not peak or not result.images_per_s:
        return None
    steps_per_s = result.images_per_s / (cfg.train.batch_size * cfg.tricks.d_steps)
    return flops * steps_per_s / (peak * processes)
