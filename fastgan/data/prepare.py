"""Convert a folder of images once into a uint8 array file, so training never decodes again.

`DST.npy` holds uint8 [N, C, R, R] in the folder's sorted order; `DST.json` beside it holds
`classes`, `labels`, `resolution`, `channels`, `source`, `count` (and `skipped`), which
`npy:DST.npy` reads back (`fastgan.data.sources._npy_labels`). Any backend then reads the array.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastgan import files
from fastgan.data.folder import FolderSource, decode
from fastgan.errors import UsageError


@dataclass(frozen=True)
class Prepared:
    array: Path
    meta: Path
    count: int
    classes: list[str]
    skipped: int


def prepare_folder(src: Path, dst: Path, resolution: int, channels: int = 3, skip_bad: bool = False) -> Prepared:
    """Decode every image under `src` to `channels` x `resolution`^2 and write `dst` (.npy) + its .json."""
    if dst.suffix != ".npy":
        raise UsageError(f"{dst}: the destination must end in .npy (its description is written beside it as .json)")
    if channels not in (1, 3):
        raise UsageError(f"--channels {channels}: choose 1 (grey) or 3 (RGB)")
    if resolution < 1:
        raise UsageError(f"--resolution {resolution}: must be a positive number of pixels")
    with warnings.catch_warnings():  # the skipped count is reported with the result instead
        warnings.simplefilter("ignore")
        source = FolderSource.scan(src, channels, resolution, skip_bad=skip_bad)  # refuses bad files, naming them
    dst.parent.mkdir(parents=True, exist_ok=True)
    meta_path = dst.with_suffix(".json")
    # Each file is written beside its destination and renamed into place (fastgan.files), so an
    # interrupted run never leaves a half array; the array streams: no [N, C, R, R] copy in memory.
    with files.replacing(dst) as f, ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # PIL decodes without the GIL
        files.write_npy_header(f, (len(source), channels, resolution, resolution))
        for image in pool.map(lambda path: _decode(path, channels, resolution), source.files):
            f.write(np.ascontiguousarray(image, dtype=np.uint8).tobytes())
    meta = {
        "source": str(src),
        "count": len(source),
        "resolution": resolution,
        "channels": channels,
        "classes": source.classes,
        "labels": source.labels.tolist(),
        "skipped": len(source.skipped),
    }
    files.write_json(meta_path, meta, indent=None)
    return Prepared(dst, meta_path, len(source), source.classes, len(source.skipped))


def _decode(path: Path, channels: int, resolution: int) -> np.ndarray:
    try:
        return decode(path, channels, resolution)
    except Exception as e:  # changed on disk since the scan: say which file
        raise UsageError(f"{path}: cannot decode image ({type(e).__name__}: {e}); fix or remove it") from None
