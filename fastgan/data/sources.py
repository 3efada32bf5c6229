"""Where images come from: a registry of sources, each giving uint8 CHW images and int labels.

`data.source` is a name (`mnist`, `fashion-mnist`, `cifar10`) or `kind:PATH` (`folder:PATH`,
`npy:PATH`). Every source is fitted to the model's channels and resolution, so the backends
that batch it never reshape anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastgan.config import DataConfig
from fastgan.data.fit import describe_fit, fit_array
from fastgan.data.folder import FolderSource
from fastgan.data.idx import find_idx, read_idx
from fastgan.errors import UsageError

# Debian's dataset-fashion-mnist package installs the four idx files here.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@dataclass
class ArraySource:
    """A dataset held in memory as uint8 [N, C, H, W] with int64 labels [N]."""

    name: str
    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    converted: str = ""  # what fitting to the model did, in words (fastgan.data.fit.describe_fit); "" for nothing

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return self.images[i], int(self.labels[i])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.images, self.labels


Source = ArraySource | FolderSource


def fitted(name: str, images: np.ndarray, labels: np.ndarray, num_classes: int, channels: int, resolution: int) -> ArraySource:
    """uint8 [N, C, H, W] images fitted to the model, with what that did in words."""
    return ArraySource(name, fit_array(images, channels, resolution), labels, num_classes, describe_fit(images.shape, channels, resolution))


def open_source(cfg: DataConfig, channels: int, resolution: int) -> Source:
    """Open `cfg.source`, fitted to `channels` x `resolution` x `resolution`."""
    kind, sep, arg = cfg.source.partition(":")
    if kind not in SOURCES or (kind in PATH_SOURCES) != bool(sep):
        allowed = ", ".join(n + (":PATH" if n in PATH_SOURCES else "") for n in SOURCES)
        raise UsageError(f"data.source = {cfg.source!r} is not a known source; choose one of: {allowed}")
    if kind in PATH_SOURCES:
        return SOURCES[kind](cfg, Path(arg).expanduser(), channels, resolution)
    return SOURCES[kind](cfg, None, channels, resolution)


# ---------------------------------------------------------------------------- idx datasets


def _open_idx_dataset(cfg: DataConfig, name: str, places: list[Path], tv_class: str, channels: int, resolution: int) -> ArraySource:
    """MNIST-style idx files from the first of `places` that has them, else a torchvision download."""
    prefix = "train" if cfg.split == "train" else "t10k"
    for folder in places:
        img_path = find_idx(folder, f"{prefix}-images-idx3-ubyte")
        lbl_path = find_idx(folder, f"{prefix}-labels-idx1-ubyte")
        if img_path and lbl_path:
            images = read_idx(img_path)[:, None]  # [N, 1, 28, 28]
            labels = read_idx(lbl_path).astype(np.int64)
            return fitted(name, images, labels, 10, channels, resolution)
    tried = [str(p) for p in places]
    if cfg.download:
        try:
            return _download_torchvision(cfg, name, tv_class, channels, resolution)
        except Exception as e:  # no network, a proxy, a broken mirror: report, do not crash
            tried.append(f"torchvision download into {cfg.root} ({type(e).__name__}: {e})")
    hint = "apt-get install dataset-fashion-mnist, " if name == "fashion-mnist" else ""
    raise UsageError(
        f"data.source = {name!r}: no {cfg.split} split found; tried {'; '.join(tried)}. "
        f"Get it with: {hint}a machine with network access and data.download = true, "
        f"or the idx files placed in data.root (now {cfg.root!r})"
    )


def _download_torchvision(cfg: DataConfig, name: str, tv_class: str, channels: int, resolution: int) -> ArraySource:
    import torchvision  # a heavy import: only when a download is needed

    ds = getattr(torchvision.datasets, tv_class)(root=cfg.root, train=cfg.split == "train", download=True)
    data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
    images = data[:, None] if data.ndim == 3 else data.transpose(0, 3, 1, 2)
    labels = np.asarray(ds.targets, dtype=np.int64)
    return fitted(name, np.ascontiguousarray(images), labels, len(ds.classes), channels, resolution)


def open_fashion_mnist(cfg: DataConfig, _: Path | None, channels: int, resolution: int) -> ArraySource:
    root = Path(cfg.root)
    places = [root / "FashionMNIST" / "raw", root / "fashion-mnist", root, DEBIAN_FASHION_MNIST]
    return _open_idx_dataset(cfg, "fashion-mnist", places, "FashionMNIST", channels, resolution)


def open_mnist(cfg: DataConfig, _: Path | None, channels: int, resolution: int) -> ArraySource:
    root = Path(cfg.root)
    places = [root / "MNIST" / "raw", root / "mnist", root]
    return _open_idx_dataset(cfg, "mnist", places, "MNIST", channels, resolution)


def open_cifar10(cfg: DataConfig, _: Path | None, channels: int, resolution: int) -> ArraySource:
    present = (Path(cfg.root) / "cifar-10-batches-py").is_dir()
    if not present and not cfg.download:
        raise UsageError(
            f"data.source = 'cifar10': not found in {cfg.root}/cifar-10-batches-py and data.download = false; "
            "set data.download = true on a machine with network access, or data.root to where it lives"
        )
    try:
        return _download_torchvision(cfg, "cifar10", "CIFAR10", channels, resolution)
    except UsageError:
        raise
    except Exception as e:
        raise UsageError(
            f"data.source = 'cifar10': could not load or download into {cfg.root} ({type(e).__name__}: {e}); "
            "download it on a machine with network access, then point data.root at it"
        ) from None


# ---------------------------------------------------------------------------- files


def open_npy(cfg: DataConfig, path: Path, channels: int, resolution: int) -> ArraySource:
    """A uint8 array [N, H, W], [N, H, W, C] or [N, C, H, W]; labels from a sibling file if any.

    Labels: `NAME.labels.npy` beside `NAME.npy`, or `labels` in `NAME.json` (as `fastgan data
    prepare` writes). Without either, every image has label 0.
    """
    if not path.is_file():
        raise UsageError(f"data.source = 'npy:{path}': file not found")
    try:
        images = np.load(path, mmap_mode="r")
    except (ValueError, OSError) as e:
        raise UsageError(f"data.source = 'npy:{path}': not a readable .npy array ({e})") from None
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise UsageError(
            f"data.source = 'npy:{path}': expected a uint8 array of shape [N, H, W], [N, H, W, C] or [N, C, H, W], "
            f"got {images.dtype} {list(images.shape)}"
        )
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[:, None]
    elif images.shape[-1] in (1, 3, 4) and images.shape[1] not in (1, 3, 4):
        images = images.transpose(0, 3, 1, 2)  # NHWC -> NCHW
    labels, num_classes = _npy_labels(path, len(images))
    return fitted(f"npy:{path}", np.ascontiguousarray(images), labels, num_classes, channels, resolution)


def _npy_labels(path: Path, n: int) -> tuple[np.ndarray, int]:
    label_file = path.with_suffix(".labels.npy")
    meta_file = path.with_suffix(".json")
    labels: np.ndarray | None = None
    num_classes = 0
    if label_file.is_file():
        labels = np.load(label_file).astype(np.int64)
    elif meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        if "labels" in meta:
            labels = np.asarray(meta["labels"], dtype=np.int64)
        num_classes = len(meta.get("classes", []))
    if labels is None:
        return np.zeros(n, dtype=np.int64), 1
    if len(labels) != n:
        raise UsageError(f"{path}: {n} images but {len(labels)} labels in its label file; regenerate them together")
    return labels, max(num_classes, int(labels.max()) + 1 if n else 1)


def open_folder(cfg: DataConfig, path: Path, channels: int, resolution: int) -> FolderSource:
    return FolderSource.scan(path, channels, resolution, skip_bad=cfg.skip_bad)


SourceOpener = Callable[[DataConfig, Path | None, int, int], Source]
SOURCES: dict[str, SourceOpener] = {
    "fashion-mnist": open_fashion_mnist,
    "mnist": open_mnist,
    "cifar10": open_cifar10,
    "folder": open_folder,  # type: ignore[dict-item]
    "npy": open_npy,  # type: ignore[dict-item]
}
PATH_SOURCES = {"folder", "npy"}
