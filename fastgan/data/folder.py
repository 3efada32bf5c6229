"""A folder of images, flat or with one sub-folder per class, decoded lazily with PIL."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fastgan.data.check import Kind, describe_bad, scan_images
from fastgan.errors import UsageError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


def list_images(root: Path) -> list[Path]:
    """Every image file below `root`, sorted, hidden files and folders skipped."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def decode(path: Path, channels: int, resolution: int) -> np.ndarray:
    """Fully decode `path` (PIL's verify() passes truncated files; load() does not) to uint8 CHW."""
    from PIL import Image

    with Image.open(path) as f:
        f.load()
        im = f.convert("L" if channels == 1 else "RGB")
    w, h = im.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    im = im.crop((left, top, left + side, top + side))
    if side != resolution:
        im = im.resize((resolution, resolution), Image.Resampling.BICUBIC)
    arr = np.asarray(im, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def describe_folder_fit(kinds: Counter[Kind], channels: int, resolution: int) -> str:
    """What `decode` does to the images of each kind (mode, width, height) to fit the model, in words."""
    mode = "L" if channels == 1 else "RGB"
    recoloured = sum(k for (m, _, _), k in kinds.items() if m != mode)
    cropped = sum(k for (_, w, h), k in kinds.items() if w != h)
    resized = sum(k for (_, w, h), k in kinds.items() if min(w, h) != resolution)
    steps = [f"{recoloured:,} to {'grey' if channels == 1 else 'RGB'}"] if recoloured else []
    steps += [f"{cropped:,} centre-cropped to a square"] if cropped else []
    steps += [f"{resized:,} resized to {resolution}x{resolution} (bicubic)"] if resized else []
    if not steps:
        return ""
    shape = f"{channels}x{resolution}x{resolution}"
    return f"{sum(kinds.values()):,} images converted as they are read to the model's {shape}: {', '.join(steps)}"


@dataclass
class FolderSource:
    """Images under `root`: labelled by their first-level sub-folder, or all 0 when flat."""

    name: str
    files: list[Path]
    labels: np.ndarray
    classes: list[str]
    channels: int
    resolution: int
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    converted: str = ""  # what decoding does to fit the model, in words (describe_folder_fit); "" for nothing

    @property
    def num_classes(self) -> int:
        return max(len(self.classes), 1)

    @classmethod
    def scan(cls, root: Path, channels: int, resolution: int, skip_bad: bool = False) -> FolderSource:
        if not root.is_dir():
            raise UsageError(f"data.source = 'folder:{root}': no such folder")
        files = list_images(root)
        if not files:
            raise UsageError(
                f"data.source = 'folder:{root}': no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, "
                "in the folder and its sub-folders)"
            )
        top = sorted({f.relative_to(root).parts[0] for f in files if len(f.relative_to(root).parts) > 1})
        flat = any(len(f.relative_to(root).parts) == 1 for f in files)
        classes = [] if flat or not top else top
        # Decode every file once now: no backend can skip a bad file mid-run (DALI cannot even name it).
        bad, kinds = scan_images(files)
        if bad and not skip_bad:
            raise UsageError(
                f"data.source = 'folder:{root}': {len(bad)} of {len(files)} images cannot be decoded: {describe_bad(root, bad)}. "
                f"Fix or remove them (fastgan data check {root} lists them all), or set data.skip_bad = true to skip them"
            )
        if len(bad) == len(files):
            raise UsageError(
                f"data.source = 'folder:{root}': none of its {len(files)} images can be decoded ({describe_bad(root, bad, 3)})"
            )
        if bad:
            warnings.warn(f"data.source = 'folder:{root}': skipping {len(bad)} undecodable images (data.skip_bad = true)", stacklevel=2)
        broken = {path for path, _ in bad}
        files = [f for f in files if f not in broken]
        index = {c: i for i, c in enumerate(classes)}
        labels = np.array([index.get(f.relative_to(root).parts[0], 0) for f in files], dtype=np.int64)
        converted = describe_folder_fit(kinds, channels, resolution)
        return cls(f"folder:{root}", files, labels, classes, channels, resolution, skipped=bad, converted=converted)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return decode(self.files[i], self.channels, self.resolution), int(self.labels[i])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Decode every file once (the tensor backend keeps the result on the device)."""
        images = np.empty((len(self), self.channels, self.resolution, self.resolution), dtype=np.uint8)
        for i, path in enumerate(self.files):
            try:
                images[i] = decode(path, self.channels, self.resolution)
            except Exception as e:  # PIL raises many types for bad files
                raise UsageError(f"{path}: cannot decode image ({type(e).__name__}: {e}); fix or remove it") from None
        return images, self.labels
