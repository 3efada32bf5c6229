"""samples/timeline.gif (fastgan.sampling.timeline): which grids become frames, the size cap, and
the writer's time budget. cli/test_report.py checks the GIF a real run leaves."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fastgan.sampling.timeline import MAX_FRAMES, evenly_spaced


def test_timeline_keeps_at_most_max_frames_evenly_spaced() -> None:
    picked = evenly_spaced(500, MAX_FRAMES)
    assert len(picked) == MAX_FRAMES and picked[0] == 0 and picked[-1] == 499
    assert max(np.diff(picked)) - min(np.diff(picked)) <= 1
    assert evenly_spaced(3, MAX_FRAMES) == [0, 1, 2]


def test_timeline_drops_frames_to_stay_under_its_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fastgan.sampling.timeline as timeline

    rng = np.random.default_rng(0)
    for i in range(12):  # noise: the worst case for GIF compression
        Image.fromarray(rng.integers(0, 255, size=(120, 120), dtype=np.uint8)).save(tmp_path / f"nimg-{i:09d}.png")
    full = Image.open(io.BytesIO(timeline.timeline_gif(tmp_path) or b""))
    assert full.n_frames == 12
    monkeypatch.setattr(timeline, "MAX_BYTES", len(timeline.encode([timeline.frame(tmp_path / "nimg-000000000.png", 0)])) * 5)
    data = timeline.timeline_gif(tmp_path) or b""
    small = Image.open(io.BytesIO(data))
    assert 2 <= small.n_frames < 12 and len(data) <= timeline.MAX_BYTES


def test_timeline_writer_defers_within_its_budget_and_flushes_at_the_end(tmp_path: Path) -> None:
    from fastgan.sampling.timeline import TimelineWriter

    def add_grid(i: int) -> None:
        Image.fromarray(np.full((30, 30), 40 * i, dtype=np.uint8)).save(tmp_path / f"nimg-{i:09d}.png")

    writer = TimelineWriter(tmp_path)
    add_grid(1)
    writer.update()
    assert Image.open(tmp_path / "timeline.gif").n_frames == 1
    writer.next_at = float("inf")  # as if the last rebuild had been slow
    add_grid(2)
    writer.update()
    assert Image.open(tmp_path / "timeline.gif").n_frames == 1 and writer.pending
    writer.flush()
    assert Image.open(tmp_path / "timeline.gif").n_frames == 2 and not writer.pending
