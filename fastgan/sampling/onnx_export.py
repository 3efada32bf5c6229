"""A generator as an ONNX graph, to sample with numpy and onnxruntime alone (`fastgan export`).

The graph: z float32 [N, Z] (and, for a conditional model, labels int64 [N] in 0..K-1) ->
images float32 [N, C, R, R] in [-1, 1], for any batch size N. Images stay floats, as G makes
them, so the file answers to PyTorch to 1e-4 (tests/cli/test_export.py); they are clamped to
[-1, 1] inside the graph (r3gan's G is linear at the output; the tanh models are unchanged by
it), so `((images + 1) * 127.5).round()` is exactly the uint8 that `fastgan sample` writes.
What z must be drawn from (model.latent), Z, K and the source travel in the file's metadata.

The graph comes from the unwrapped, uncompiled module that `load_generator` builds, in eval
mode: BatchNorm normalises with G_ema's own running statistics, which become constants.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import torch
from torch import nn

import fastgan
from fastgan.config import ModelConfig
from fastgan.latents import draw_latents

# 17: the oldest opset the exporter writes without converting, and one that onnxruntime 1.11+
# (2022) and the web and mobile runtimes run; these nets need nothing newer.
OPSET = 17
# Measured disagreement is ~1e-6 for every family (fp32, CPU); a graph that is wrong is off by
# tenths. A file past this is not written.
MAX_ABS_ERROR = 1e-3
LATENT_FORMULA = {"gaussian": "N(0, 1)", "uniform": "U[-1, 1]"}


class ImagesInRange(nn.Module):
    """The graph that is exported: G's images clamped to [-1, 1]. Unconditional models take z
    alone (G ignores its labels; ONNX files have no optional inputs, so the input is left out)."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if labels is None:
            labels = torch.zeros(z.shape[0], dtype=torch.long, device=z.device)
        return self.G(z, labels).clamp(-1, 1)  # [N, C, R, R]


@dataclass(frozen=True)
class Exported:
    data: bytes  # the .onnx file
    max_abs_error: float  # onnxruntime against PyTorch on a few latents


def example_inputs(model: ModelConfig, num: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """(z,) or (z, labels) for `num` images, z from the model's own latent distribution."""
    g = torch.Generator().manual_seed(seed)
    z = draw_latents(model.latent, num, model.z_dim, generator=g)
    if not model.conditional:
        return (z,)
    return z, torch.arange(num) % model.num_classes


def to_onnx(G: nn.Module, model: ModelConfig, where: str) -> Exported:
    """The ONNX file of generator `G` (on the CPU, as `load_generator` returns it), checked in
    onnxruntime against PyTorch before it is handed back."""
    assert not hasattr(G, "_orig_mod") and not hasattr(G, "module"), "export the unwrapped, uncompiled module"
    graph = ImagesInRange(G.cpu()).eval()
    names = ["z", "labels"] if model.conditional else ["z"]
    inputs = example_inputs(model, 2)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript exporter (dynamo=False), not the torch.export one: both give the same
        # graphs (to ~1e-6) for every model family here on the CPU (torch 2.14.1), but dynamo=True
        # needs onnxscript and onnx-ir besides onnx, prints progress on stdout, and takes 2-6 s
        # against ~1 s. Its deprecation warning is filtered; docs/NOTES.md says how to switch.
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message="The feature will be removed", category=DeprecationWarning)
        torch.onnx.export(
            graph,
            inputs,
            buffer,  # type: ignore[arg-type]  # the TorchScript exporter writes to file objects too; the stub names paths only
            dynamo=False,
            opset_version=OPSET,
            input_names=names,
            output_names=["images"],
            dynamic_axes={name: {0: "N"} for name in [*names, "images"]},  # the batch axis, any size
        )
    data = with_metadata(buffer.getvalue(), model, where)
    return Exported(data, max_abs_error(data, graph, example_inputs(model, 5, seed=1)))


def with_metadata(data: bytes, model: ModelConfig, where: str) -> bytes:
    """The file with what a user needs to feed it: z's distribution and size, the classes, the source."""
    import onnx

    proto = onnx.load_model_from_string(data)
    props = {
        "fastgan.version": fastgan.__version__,
        "fastgan.source": where,
        "fastgan.model": model.name,
        "fastgan.latent": model.latent,  # draw z from this: gaussian N(0, 1) or uniform U[-1, 1]
        "fastgan.z_dim": str(model.z_dim),
        "fastgan.num_classes": str(model.num_classes if model.conditional else 0),  # 0: no labels input
        "fastgan.images": "float32 [N, C, H, W] in [-1, 1]; uint8 = round((images + 1) * 127.5)",
    }
    onnx.helper.set_model_props(proto, props)
    proto.doc_string = f"fastgan generator of {where}: z ~ {LATENT_FORMULA[model.latent]}"
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def max_abs_error(data: bytes, graph: nn.Module, inputs: tuple[torch.Tensor, ...]) -> float:
    """The largest difference between onnxruntime's images and PyTorch's for `inputs`."""
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    feeds = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs, strict=True)}
    (images,) = session.run(["images"], feeds)
    with torch.no_grad():
        expected = graph(*inputs)
    return float((torch.from_numpy(images) - expected).abs().max())


def signature(model: ModelConfig) -> str:
    """What the graph takes and gives, for the command's success line."""
    z = f"z float32 [N, {model.z_dim}] ~ {LATENT_FORMULA[model.latent]}"
    labels = f", labels int64 [N] in 0..{model.num_classes - 1}" if model.conditional else ""
    return f"{z}{labels} -> images float32 [N, {model.channels}, {model.resolution}, {model.resolution}] in [-1, 1]"
