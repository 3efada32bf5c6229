"""Training statistics kept on the device and read once per log interval.

`add` only queues device tensors (no host sync). `read` stacks everything, reduces across
processes, and copies to the host: that is the one sync per log interval.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class DeviceStats:
    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.maxes: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}  # host ints: how many adds, known without a sync

    def add(self, name: str, value: torch.Tensor) -> None:
        v = value.detach().float()
        if name in self.sums:
            self.sums[name] += v
            self.maxes[name] = torch.maximum(self.maxes[name], v)
        else:
            self.sums[name], self.maxes[name] = v.clone(), v.clone()
        self.counts[name] = self.counts.get(name, 0) + 1

    def read(
        self, reduce_mean: Callable[[torch.Tensor], torch.Tensor], reduce_max: Callable[[torch.Tensor], torch.Tensor]
    ) -> dict[str, float]:
        """Means, totals (`name_total`) and maxima (`name_max`) since the last read. Syncs."""
        if not self.sums:
            return {}
        names = sorted(self.sums)
        means = reduce_mean(torch.stack([self.sums[n] / self.counts[n] for n in names]))
        totals = reduce_mean(torch.stack([self.sums[n] for n in names]))
        maxes = reduce_max(torch.stack([self.maxes[n] for n in names]))
        host = torch.stack([means, totals, maxes]).cpu().tolist()  # the sync point
        out: dict[str, float] = {}
        for i, n in enumerate(names):
            out[n] = host[0][i]
            out[n + "_total"] = host[1][i]
            out[n + "_max"] = host[2][i]
        self.sums.clear()
        self.maxes.clear()
        self.counts.clear()
        return out
