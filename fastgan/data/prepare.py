"""Convert a folder of images once into a uint8 array file, so training never decodes again.

`DST.npy` holds uint8 [N, C, R, R] in the folder's sorted order; `DST.json` beside it holds
`classes`, `labels`, `resolution`, `channels`, `source`, `count` (and `skipped`), which
`npy:DST.npy` reads back (`fastgan.data.sources._npy_labels`). Any backend then reads the array.
"""

from __future__ import annotations

import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
    # Written under temporary names and renamed, so an interrupted run never leaves a half array.
    tmp_array, tmp_meta = dst.with_name(f".{dst.name}.tmp"), meta_path.with_name(f".{meta_path.name}.tmp")
    shape = (len(source), channels, resolution, resolution)
    out = np.lib.format.open_memmap(tmp_array, mode="w+", dtype=np.uint8, shape=shape)  # streams: no [N, C, R, R] copy in memory
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:  # PIL decodes with the GIL released
        for i, image in enumerate(pool.map(lambda f: _decode(f, channels, resolution), source.files)):
            out[i] = image
    out.flush()
    del out
    meta = {
        "source": str(src),
        "count": len(source),
        "resolution": resolution,
        "channels": channels,
        "classes": source.classes,
        "labels": source.labels.tolist(),
        "skipped": len(source.skipped),
    }
    tmp_meta.write_text(json.dumps(meta))
    os.replace(tmp_array, dst)
    os.replace(tmp_meta, meta_path)
    return Prepared(dst, meta_path, len(source), source.classes, len(source.skipped))


def _decode(path: Path, channels: int, resolution: int) -> np.ndarray:
    try:
        return decode(path, channels, resolution)
    except Exception as e:  # changed on disk since the scan: say which file
        raise UsageError(f"{path}: cannot decode image ({type(e).__name__}: {e}); fix or remove it") from None
