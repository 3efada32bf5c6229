"""Find image files that cannot be trained on, before any backend tries to decode them.

Every file is decoded fully once: PIL's `verify()` passes truncated JPEGs and only `load()`
catches them, and DALI can neither skip a corrupt file nor name it in its error
(NVIDIA/DALI#3913). `FolderSource.scan` runs this, so every backend gets the same check.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# Magic numbers of the formats the folder source lists: a file that starts like an image but
# that PIL cannot identify is a broken image (a cut-off header), not a stray text file.
_SIGNATURES = (b"\x89PNG", b"\xff\xd8", b"GIF8", b"BM", b"RIFF", b"II*\x00", b"MM\x00*")
# 32-bit integer and float pixels have no 8-bit meaning: PIL clips them and DALI refuses them.
_UNREADABLE_MODES = {"I": "32-bit integer pixels", "F": "32-bit float pixels"}


Kind = tuple[str, int, int]  # PIL mode, width, height


def inspect_image(path: Path) -> tuple[str | None, Kind | None]:
    """(why `path` cannot be decoded to 8-bit grey or RGB, or None when it can; its kind when it can)."""
    from PIL import Image, UnidentifiedImageError

    try:
        if path.stat().st_size == 0:
            return "empty file", None
        with Image.open(path) as im:
            mode, size = im.mode, im.size
            im.load()
            if mode in _UNREADABLE_MODES:
                return f"unreadable mode {mode!r} ({_UNREADABLE_MODES[mode]}); save it as 8-bit grey or RGB", None
            try:
                im.convert("RGB")
            except (ValueError, OSError) as e:
                return f"unreadable mode {mode!r} ({e})", None
    except UnidentifiedImageError:
        with open(path, "rb") as f:
            head = f.read(8)
        return "truncated header (starts like an image, but PIL cannot read it)" if head.startswith(_SIGNATURES) else "not an image", None
    except (OSError, EOFError, SyntaxError) as e:  # PIL reports cut-off data as OSError("... truncated"), EOFError or SyntaxError
        truncated = "truncated" in str(e).lower() or isinstance(e, EOFError)
        return (f"truncated ({e})" if truncated else f"cannot decode ({type(e).__name__}: {e})"), None
    except Exception as e:  # decoders raise many types for hostile files; report, never crash the scan
        return f"cannot decode ({type(e).__name__}: {e})", None
    return None, (mode, *size)


def image_problem(path: Path) -> str | None:
    """Why `path` cannot be decoded to 8-bit grey or RGB, or None when it can."""
    return inspect_image(path)[0]


def scan_images(files: Sequence[Path], num_threads: int | None = None) -> tuple[list[tuple[Path, str]], Counter[Kind]]:
    """(path, reason) for each file in `files` that cannot be decoded, in the order given, and how
    many of the others are of each kind (mode, width, height).

    PIL's decoders release the GIL, so a few threads decode in parallel.
    """
    workers = num_threads or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        found = list(pool.map(inspect_image, files, chunksize=64))
    bad = [(path, why) for path, (why, _) in zip(files, found, strict=True) if why is not None]
    return bad, Counter(kind for _, kind in found if kind is not None)


def find_bad(files: Sequence[Path], num_threads: int | None = None) -> list[tuple[Path, str]]:
    """(path, reason) for each file in `files` that cannot be decoded, in the order given."""
    return scan_images(files, num_threads)[0]


def describe_bad(root: Path, bad: Sequence[tuple[Path, str]], limit: int = 10) -> str:
    """One line: the first `limit` bad files relative to `root`, with their reasons."""
    shown = "; ".join(f"{_relative(path, root)}: {why}" for path, why in bad[:limit])
    more = f"; and {len(bad) - limit} more" if len(bad) > limit else ""
    return shown + more


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
