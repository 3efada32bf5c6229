"""Reader for the idx format of MNIST and Fashion-MNIST (LeCun et al.), gzipped or not."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from fastgan.errors import UsageError

# idx magic: two zero bytes, a type code, the number of dimensions. Only uint8 (0x08) is used here.
_UINT8 = 0x08


def read_idx(path: Path) -> np.ndarray:
    """Return the array stored at `path` (`.gz` is decompressed)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise UsageError(f"{path}: cannot read idx file: {e}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != _UINT8:
        raise UsageError(f"{path}: not a uint8 idx file (bad header); re-download the dataset")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(raw) - offset != expected:
        raise UsageError(f"{path}: truncated idx file ({len(raw) - offset} of {expected} bytes); re-download it")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def find_idx(folder: Path, stem: str) -> Path | None:
    """`folder/stem` or `folder/stem.gz`, whichever exists."""
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None
