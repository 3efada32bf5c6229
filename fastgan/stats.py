"""Training statistics kept on the device and read once per log interval.

`add` takes one phase's values by name and accumulates sums and maxima with three kernels (a
stack, a sum, a maximum: no host sync, and a handful of launches per phase instead of two or
three per statistic). `read` stacks everything, reduces across processes, and copies to the
host: that is the one sync per log interval.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class DeviceStats:
    def __init__(self) -> None:
        self.names: dict[str, tuple[str, ...]] = {}  # group -> its statistics, in order
        self.sums: dict[str, torch.Tensor] = {}
        self.maxes: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}  # host ints: how many adds, known without a sync

    def add(self, group: str, **values: torch.Tensor) -> None:
        """Accumulate one phase's 0-dim device tensors, by name, under `group`."""
        names = tuple(values)
        vector = torch.stack([v.detach().float() for v in values.values()])
        if group in self.sums:
            assert self.names[group] == names, f"stats group {group!r} changed its names"
            self.sums[group] += vector
            torch.maximum(self.maxes[group], vector, out=self.maxes[group])
        else:
            self.names[group] = names
            self.sums[group], self.maxes[group] = vector, vector.clone()
        self.counts[group] = self.counts.get(group, 0) + 1

    def peek(self, name: str) -> torch.Tensor | None:
        """The running sum of `name` since the last read, on the device (no sync), or None."""
        for group, names in self.names.items():
            if name in names and group in self.sums:
                return self.sums[group][names.index(name)]
        return None

    def read(
        self, reduce_mean: Callable[[torch.Tensor], torch.Tensor], reduce_max: Callable[[torch.Tensor], torch.Tensor]
    ) -> dict[str, float]:
        """Means, totals (`name_total`) and maxima (`name_max`) since the last read. Syncs."""
        if not self.sums:
            return {}
        groups = sorted(self.sums)
        names = [n for g in groups for n in self.names[g]]
        totals = reduce_mean(torch.cat([self.sums[g] for g in groups]))
        means = reduce_mean(torch.cat([self.sums[g] / self.counts[g] for g in groups]))
        maxes = reduce_max(torch.cat([self.maxes[g] for g in groups]))
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
