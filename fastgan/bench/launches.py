"""Kernel launches per training step, counted with torch.profiler over one warmed step.

Small GANs are launch-bound on a GPU: a step costs more in launches than in FLOPs. So the bench
counts them, on any machine:
- On a GPU: the CUDA runtime calls that put work on the device (kernel, memcpy, memset and
  CUDA-graph launches), as the host issues them.
- On a CPU: ATen operators that do work (not views, not allocations, and with no such operator
  beneath them), plus inductor's generated C++ kernels, which are recorded when
  `torch._inductor.config.cpp.enable_kernel_profile` is on (`enable_cpu_kernel_records`).
  A TorchDispatchMode would not do: it makes compiled code run eagerly.

"Outside models" means outside the `model:` record_function ranges that the step puts around
G's and D's forward, backward and penalties (fastgan.train.step). Ranges are matched by time,
because on a GPU the autograd engine launches backward kernels from a thread of its own.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import torch

CUDA_LAUNCHES = re.compile(r"^(cudaLaunchKernel|cuLaunchKernel|cudaLaunchKernelExC|cuLaunchKernelEx|cudaGraphLaunch|cuGraphLaunch"
                           r"|cudaMemcpyAsync|cudaMemsetAsync|cudaLaunchCooperativeKernel)(_v\d+)?$")  # fmt: skip
INDUCTOR_CPU_KERNEL = re.compile(r"cpp_fused|kernel_cpp")
MODEL_RANGE = "model:"
# ATen operators that launch nothing: allocation, metadata, and host reads of scalars
NO_WORK = {
    "empty", "empty_strided", "empty_like", "new_empty", "new_empty_strided", "resize_", "resize_as_", "resolve_conj",
    "resolve_neg", "_local_scalar_dense", "item", "lift_fresh", "set_", "result_type", "size", "stride", "numel", "dim",
}  # fmt: skip


@dataclass
class LaunchCount:
    per_step: int
    outside_models: int
    outside_by_name: list[tuple[str, int]] = field(default_factory=list)  # most frequent first: what to fuse next
    graph_launches: int = 0  # CUDA graph replays among them (compile mode reduce-overhead)


def enable_cpu_kernel_records() -> None:
    """Make inductor's CPU kernels visible to the profiler. Call before anything is compiled."""
    import torch._inductor.config as inductor_config

    inductor_config.cpp.enable_kernel_profile = True


@cache
def is_view(op: str) -> bool:
    """True for ATen operators that only return an alias of an input (view, detach, to-as-no-op)."""
    try:
        schemas = torch._C._jit_get_schemas_for_operator(op)
    except RuntimeError:
        return False
    tensor_schemas = [s for s in schemas if s.returns and all("Tensor" in str(r.type) for r in s.returns)]
    if not tensor_schemas:
        return op == "detach"
    return all(r.alias_info is not None and not r.alias_info.is_write for s in tensor_schemas for r in s.returns)


def is_cpu_work(name: str) -> bool:
    if INDUCTOR_CPU_KERNEL.search(name):
        return True
    if not name.startswith("aten::"):
        return False
    return name[len("aten::") :] not in NO_WORK and not is_view(name)


def count_launches(step: Callable[[], None], device: torch.device) -> LaunchCount:
    """Run `step` once under the profiler and count what it launched (call it warmed up)."""
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        step()
        if cuda:
            torch.cuda.synchronize(device)
    events = list(prof.events())
    launches = [e for e in events if CUDA_LAUNCHES.match(e.name)] if cuda else cpu_launches(events)
    ranges = [(e.time_range.start, e.time_range.end) for e in events if e.name.startswith(MODEL_RANGE)]
    outside = [e for e in launches if not any(start <= e.time_range.start <= end for start, end in ranges)]
    names = Counter(_label(e) for e in outside)
    graphs = sum(1 for e in launches if "GraphLaunch" in e.name)
    return LaunchCount(len(launches), len(outside), names.most_common(12), graphs)


def is_multi_tensor(name: str) -> bool:
    """foreach and fused operators (Adam, norms, unscaling): one multi-tensor launch on a GPU,
    a loop of per-tensor operators on a CPU. They count once, with nothing beneath them."""
    return name.startswith(("aten::_foreach_", "aten::_fused_", "aten::_amp_foreach_"))


def cpu_launches(events: list[Any]) -> list[Any]:
    """Work operators with no work operator beneath them: one per kernel, as nearly as a CPU can say."""
    counted: dict[int, bool] = {}

    def inside_multi_tensor(e: Any) -> bool:
        parent = e.cpu_parent
        while parent is not None:
            if is_multi_tensor(parent.name):
                return True
            parent = parent.cpu_parent
        return False

    def has_work_below(e: Any) -> bool:
        return any(visit(c) or has_work_below(c) for c in e.cpu_children)

    def visit(e: Any) -> bool:
        key = id(e)
        if key not in counted:
            if inside_multi_tensor(e):
                counted[key] = False
            elif is_multi_tensor(e.name):
                counted[key] = True
            else:
                counted[key] = is_cpu_work(e.name) and not has_work_below(e)
        return counted[key]

    return [e for e in events if visit(e)]


def _label(e: Any) -> str:
    """A launch's name, or for a CUDA runtime call the operator that made it."""
    parent = e.cpu_parent
    while parent is not None and not parent.name.startswith("aten::") and not parent.name.startswith("model:"):
        parent = parent.cpu_parent
    return parent.name if CUDA_LAUNCHES.match(e.name) and parent is not None else e.name
