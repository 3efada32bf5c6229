"""samples/timeline.gif: the fixed-z grids in the order they were written, each frame labelled
with its images-seen count, so how the samples evolved fits in a README or a chat message.

Rebuilt from the `nimg-*.png` grids on disk each time, so a resumed run's timeline continues the
old one. Kept small: frames no wider than `MAX_WIDTH` pixels (the saved grids are 3x, so a
64-image 28x28 grid comes back to its native 242 px), at most `MAX_FRAMES` of them evenly spaced
over the run (the first and the newest always among them), and fewer when the GIF would pass
`MAX_BYTES`: grids of sharp samples compress poorly (~60 kB a frame for Fashion-MNIST).

Rebuilding costs up to ~1.5 s at 60 frames (measured on a 2-core CPU), while a GPU can pass a
sample interval in a second or two, so during training `TimelineWriter` skips rebuilds that
would spend more than about 1/`THROTTLE` of the run's time on the GIF, and always writes the last.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from fastgan import files

MAX_FRAMES = 60
MAX_WIDTH = 256  # px; shrunk by a whole factor: 726 px (64 images of 28 px, saved 3x) -> 242
MAX_BYTES = 2 * 2**20  # small enough for a README or a chat message
FRAME_MS = 250  # per frame; the last one stays 2 s so the final samples can be seen
LAST_FRAME_MS = 2000
LABEL_HEIGHT = 18  # px of white strip above each frame for the count
FONT_SIZE = 13  # px; Pillow's bundled font, so nothing is looked up on the system
GRID_NAME = re.compile(r"nimg-(\d+)\.png")
THROTTLE = 10  # after a rebuild that took c seconds, the next waits until 10c have passed


def grid_files(samples_dir: Path) -> list[tuple[int, Path]]:
    """(images seen, path) of every fixed-z grid in `samples_dir`, oldest first."""
    found = [(int(m.group(1)), p) for p in samples_dir.glob("nimg-*.png") if (m := GRID_NAME.fullmatch(p.name))]
    return sorted(found)


def evenly_spaced(num: int, keep: int) -> list[int]:
    """Indices of `keep` items spread evenly over `num`, the first and last included."""
    if num <= keep:
        return list(range(num))
    return sorted({round(i * (num - 1) / (keep - 1)) for i in range(keep)})


def frame(path: Path, nimg: int) -> Image.Image:
    """One grid, shrunk by a whole factor to fit MAX_WIDTH, under a strip saying its images seen."""
    with Image.open(path) as im:
        im.load()
        grid = im.convert("RGB")
    factor = -(-grid.width // MAX_WIDTH)  # ceil: the saved grids are 3x nearest, so /3 restores them
    if factor > 1:
        grid = grid.resize((grid.width // factor, grid.height // factor), Image.Resampling.BOX)
    canvas = Image.new("RGB", (grid.width, grid.height + LABEL_HEIGHT), "white")
    canvas.paste(grid, (0, LABEL_HEIGHT))
    ImageDraw.Draw(canvas).text((4, 2), f"{nimg:,} images seen", fill="black", font=ImageFont.load_default(size=FONT_SIZE))
    return canvas


def encode(frames: list[Image.Image]) -> bytes:
    buf = io.BytesIO()
    durations = [FRAME_MS] * (len(frames) - 1) + [LAST_FRAME_MS]
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True)
    return buf.getvalue()


def timeline_gif(samples_dir: Path) -> bytes | None:
    """The GIF's bytes, or None when there is no grid yet."""
    grids = grid_files(samples_dir)
    if not grids:
        return None
    keep = MAX_FRAMES
    while True:
        picked = [grids[i] for i in evenly_spaced(len(grids), keep)]
        frames = [frame(path, nimg) for nimg, path in picked]
        size = frames[-1].size  # grids of one run share a size; a resume with another num_samples would not
        data = encode([f if f.size == size else f.resize(size) for f in frames])
        if len(data) <= MAX_BYTES or len(frames) <= 2:
            return data
        keep = max(2, min(len(frames) - 1, int(len(frames) * MAX_BYTES / len(data) * 0.95)))  # frames cost about the same


def write_timeline(samples_dir: Path) -> Path | None:
    """Rewrite samples_dir/timeline.gif from the grids there, atomically; its path, or None if no grid."""
    data = timeline_gif(samples_dir)
    if data is None:
        return None
    out = samples_dir / "timeline.gif"
    files.write_atomic(out, data, files.THEN_RESUME)  # a reader (or a browser refreshing it) never sees half a GIF
    return out


class TimelineWriter:
    """Keeps samples/timeline.gif up to date as grids are written, within its time budget."""

    def __init__(self, samples_dir: Path) -> None:
        self.samples_dir = samples_dir
        self.next_at = 0.0  # time.perf_counter() before which update() defers
        self.pending = False  # a grid arrived that the GIF does not show yet

    def update(self, *, force: bool = False) -> None:
        start = time.perf_counter()
        if start < self.next_at and not force:
            self.pending = True
            return
        write_timeline(self.samples_dir)
        self.next_at = start + THROTTLE * (time.perf_counter() - start)
        self.pending = False

    def flush(self) -> None:
        """At the end of a run: write what update() deferred."""
        if self.pending:
            self.update(force=True)
