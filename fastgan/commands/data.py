"""`fastgan data check` and `fastgan data prepare`: vet a folder of images, or convert it once."""

from __future__ import annotations

import sys
from pathlib import Path

from fastgan.errors import UsageError


def run_check(path: Path) -> None:
    """Decode every image under `path`; print `PATH: reason` per bad file; UsageError (exit 2) if any."""
    from fastgan.data.check import find_bad
    from fastgan.data.folder import IMAGE_SUFFIXES, list_images

    if not path.is_dir():
        raise UsageError(f"{path}: no such folder")
    files = list_images(path)
    if not files:
        raise UsageError(f"{path}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))}, in the folder and its sub-folders)")
    bad = find_bad(files)
    for file, why in bad:
        print(f"{file}: {why}")
    if bad:
        raise UsageError(
            f"{len(bad)} of {len(files)} images in {path} cannot be decoded (listed above); "
            "fix or remove them, or train with data.skip_bad = true to skip them"
        )
    print(f"{path}: all {len(files)} images decode")


def run_prepare(src: Path, dst: Path, resolution: int, channels: int, skip_bad: bool) -> None:
    from fastgan.data.prepare import prepare_folder

    done = prepare_folder(src, dst, resolution, channels, skip_bad=skip_bad)
    classes = f"{len(done.classes)} classes" if done.classes else "no classes (flat folder)"
    skipped = f", {done.skipped} bad files skipped" if done.skipped else ""
    print(f"{done.array}: {done.count} images, {channels}x{resolution}x{resolution} uint8, {classes}{skipped}; labels in {done.meta}")
    print(f"train on it with: --set data.source=npy:{done.array}", file=sys.stderr)
