"""What this machine is: the CPU and its flags, and whether bf16 runs in hardware.

Training reads it (`train.precision = "auto"`) and so does every benchmark result (bf16 speed
on a CPU depends on `avx512_bf16` / `amx_bf16`, so each result records the flags).
"""

from __future__ import annotations

import os

import torch


def cpu_info() -> dict[str, str]:
    """The CPU's model and its flags as /proc/cpuinfo (= lscpu) reports them."""
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


def has_bf16_units(device: torch.device) -> bool:
    """True where bf16 runs in hardware: a CUDA GPU that computes in it (Ampere and later), or a
    CPU with AVX512-BF16 or AMX (elsewhere bf16 autocast is emulated and far slower than fp32).
    `is_bf16_supported()` alone also says yes where CUDA only emulates bf16 (e.g. a V100)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return any(f in cpu_info()["flags"].split() for f in ("avx512_bf16", "amx_bf16")) and kernels_may_use_bf16_units()


def kernels_may_use_bf16_units() -> bool:
    """False where ATen or oneDNN is held below the CPU's own instruction set, as in
    `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2` (how a CPU without bf16 units is reproduced
    on one with them): bf16 is then emulated whatever the flags say."""
    if not torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        return False
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    return isa in ("", "ALL", "DEFAULT") or any(k in isa for k in ("BF16", "AMX", "AVX10"))


def resolve_precision(precision: str, device: torch.device) -> str:
    """train.precision with "auto" made concrete for this device: "bf16" or "no"."""
    if precision != "auto":
        return precision
    return "bf16" if has_bf16_units(device) else "no"
