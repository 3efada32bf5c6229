"""samples/timeline.gif: the fixed-z grids in the order they were written, each frame labelled
with its images-seen count, so how the samples evolved fits in a README or a chat message.

Rebuilt from the `nimg-*.png` grids on disk each time, so a resumed run's timeline continues the
old one. Kept small: at most `MAX_FRAMES` frames, evenly spaced over the run (the first and the
newest always among them), each no wider than `MAX_WIDTH` pixels.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

MAX_FRAMES = 60
MAX_WIDTH = 480  # px; a 64-image 28x28 grid is 726 px wide as saved (3x), 242 px at 1x
FRAME_MS = 250  # per frame; the last one stays 2 s so the final samples can be seen
LAST_FRAME_MS = 2000
LABEL_HEIGHT = 18  # px of white strip above each frame for the count
FONT_SIZE = 13  # px; Pillow's bundled font, so nothing is looked up on the system
GRID_NAME = re.compile(r"nimg-(\d+)\.png")


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


def timeline_gif(samples_dir: Path) -> bytes | None:
    """The GIF's bytes, or None when there is no grid yet."""
    grids = grid_files(samples_dir)
    if not grids:
        return None
    picked = [grids[i] for i in evenly_spaced(len(grids), MAX_FRAMES)]
    frames = [frame(path, nimg) for nimg, path in picked]
    size = frames[-1].size  # grids of one run share a size; resume with another num_samples would not
    frames = [f if f.size == size else f.resize(size) for f in frames]
    buf = io.BytesIO()
    durations = [FRAME_MS] * (len(frames) - 1) + [LAST_FRAME_MS]
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0, optimize=True)
    return buf.getvalue()


def write_timeline(samples_dir: Path) -> Path | None:
    """Rewrite samples_dir/timeline.gif from the grids there, atomically; its path, or None if no grid."""
    data = timeline_gif(samples_dir)
    if data is None:
        return None
    out = samples_dir / "timeline.gif"
    tmp = samples_dir / ".timeline.gif.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, out)  # a reader (or a browser refreshing it) never sees half a GIF
    return out
