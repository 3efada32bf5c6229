"""Dense peak FLOP/s of known devices, for MFU, and what the host is. Unknown devices (CPUs) get no MFU.

The bf16/fp16 entries for Hopper are the ~790 TFLOP/s measured on an 8192^3 bf16 matmul in
this workplace (the data sheet says 989); TF32 keeps the data sheet's ratio (half of bf16).
fp32 without TF32 runs on the CUDA cores (67 TFLOP/s on H100 SXM and H200). Which fp32 peak
applies is decided by `train.tf32`, which fastgan sets for matmuls and convolutions alike.
"""

from __future__ import annotations

import torch

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


def cpu_info() -> dict[str, str]:
    """The CPU's model and its flags as /proc/cpuinfo (= lscpu) reports them: bf16 speed depends on
    `avx512_bf16` / `amx_bf16`, so every benchmark result records them."""
    model, flags = "", ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = value.strip()
    except OSError:
        pass
    bf16 = [f for f in ("avx512_bf16", "amx_bf16", "amx_tile") if f in flags.split()]
    return {"model": model, "bf16_units": ",".join(bf16) or "none (bf16/fp16 emulated)", "flags": flags}
