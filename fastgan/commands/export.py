"""`fastgan export SOURCE --onnx G.onnx [--sigma-rel S]`: the EMA generator of a run, a checkpoint
or a safetensors file (found and loaded as `fastgan sample` does, fastgan.run.generator), or the
one post-hoc EMA rebuilds for sigma_rel S from a run's snapshots, as one ONNX file, to sample with
numpy and onnxruntime alone (fastgan.sampling.onnx_export; docs/export.md).

Everything a user can get wrong is refused before the generator is loaded: a SOURCE that is not
there, an --onnx that is a folder, lies below a file or does not end in .onnx, and onnx or
onnxruntime not installed. The file is checked in onnxruntime against PyTorch, then written
beside its destination and renamed over it (fastgan.files): a reader never sees half of it.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from fastgan import files
from fastgan.errors import FastganError, UsageError

NEEDS = ("onnx", "onnxruntime")


def require_onnx() -> None:
    """One line naming what is missing and how to install it (imported, not just looked up: a
    broken onnxruntime wheel fails here too, not halfway through the export)."""
    missing = []
    for name in NEEDS:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        raise UsageError(f"fastgan export needs {' and '.join(missing)}, which {verb} not installed: pip install 'fastgan[export]'")


def check_onnx_out(out: Path) -> None:
    if out.suffix.lower() != ".onnx":
        raise UsageError(f"--onnx {out}: give a file name ending in .onnx, e.g. --onnx {out.with_suffix('.onnx')}")
    files.check_file_out(out, "--onnx", "G.onnx")


def run_export(source: Path, out: Path, sigma_rel: float | None = None) -> None:
    if not source.exists():
        raise UsageError(f"{source}: no such file or folder; give a run folder, a checkpoint folder or a generator.safetensors")
    check_onnx_out(out)
    require_onnx()
    import torch

    from fastgan.run.posthoc_ema import check_sigma_rel, load_g_ema
    from fastgan.sampling.onnx_export import MAX_ABS_ERROR, OPSET, signature, to_onnx

    if sigma_rel is not None:
        check_sigma_rel(sigma_rel)
    cfg, G, where = load_g_ema(source, sigma_rel, torch.device("cpu"))  # onnxruntime checks it on the CPU
    exported = to_onnx(G, cfg.model, where)
    if not exported.max_abs_error <= MAX_ABS_ERROR:  # also NaN
        raise FastganError(
            f"--onnx {out}: onnxruntime's images differ from PyTorch's by {exported.max_abs_error:.2g} (more than {MAX_ABS_ERROR:g}); "
            f"nothing was written. Please report it with {where}'s config.toml"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(out, exported.data)
    print(
        f"fastgan: wrote G_ema of {where} to {out} ({len(exported.data) / 2**20:.1f} MiB, ONNX opset {OPSET}): "
        f"{signature(cfg.model)}; onnxruntime matches PyTorch to {exported.max_abs_error:.0e}",
        file=sys.stderr,
    )
