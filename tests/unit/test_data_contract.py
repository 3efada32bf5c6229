"""Every backend yields the same contract: uint8 NCHW + int64 labels, fixed shape, on the
training device, endless, disjoint shards per process, resumable."""

from __future__ import annotations

import importlib.util
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch

from fastgan.config import DataConfig
from fastgan.data.backends import BACKENDS, make_batches
from fastgan.data.contract import StreamSpec
from fastgan.data.sources import ArraySource, open_source
from fastgan.errors import UsageError

# These two always run; DALI joins them (CPU operators) when it is installed.
LOCAL_BACKENDS = ["tensor", "torchvision"]


def _dali_installed() -> bool:
    try:
        return importlib.util.find_spec("nvidia.dali") is not None
    except ModuleNotFoundError:  # no `nvidia` namespace package at all
        return False


needs_dali = pytest.mark.skipif(not _dali_installed(), reason="NVIDIA DALI not installed (pip install nvidia-dali-cuda130)")
ALL_BACKENDS = [*LOCAL_BACKENDS, pytest.param("dali", marks=needs_dali)]


def source(n: int = 100) -> ArraySource:
    images = np.arange(n, dtype=np.uint8)[:, None, None, None].repeat(28, 2).repeat(28, 3)  # image i is all i
    return ArraySource("ids", images, np.arange(n, dtype=np.int64) % 10, 10)


def spec(batch: int, rank: int = 0, world: int = 1, hflip: bool = False) -> StreamSpec:
    return StreamSpec(batch, rank, world, seed=3, device=torch.device("cpu"), hflip=hflip, num_workers=0)


def ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].tolist()


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_contract_shape_dtype_device_and_endless(backend: str) -> None:
    batches = make_batches(backend, source(), spec(16))
    seen = list(islice(iter(batches), 20))  # 20 batches of 16 > 100 images: crosses passes
    for images, labels in seen:
        assert images.dtype == torch.uint8 and images.shape == (16, 1, 28, 28)
        assert labels.dtype == torch.int64 and labels.shape == (16,)
        assert images.device.type == "cpu" and labels.device.type == "cpu"
        assert torch.equal(labels, images[:, 0, 0, 0].long() % 10)  # labels travel with images


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_pass_covers_each_image_once_and_drops_the_ragged_tail(backend: str) -> None:
    batches = make_batches(backend, source(100), spec(16))
    first_pass = [i for images, _ in islice(iter(batches), 6) for i in ids(images)]  # 6 x 16 = 96 of 100
    assert len(first_pass) == len(set(first_pass)) == 96


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_processes_get_disjoint_shards(backend: str) -> None:
    per_rank = []
    for rank in range(2):
        batches = make_batches(backend, source(100), spec(8, rank=rank, world=2))
        per_rank.append({i for images, _ in islice(iter(batches), 6) for i in ids(images)})  # 6 x 8 x 2 = 96
    assert not per_rank[0] & per_rank[1]
    assert len(per_rank[0] | per_rank[1]) == 96


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_resume_continues_the_stream(backend: str) -> None:
    a = make_batches(backend, source(), spec(16))
    straight = [ids(x) for x, _ in islice(iter(a), 12)]
    b = make_batches(backend, source(), spec(16))
    it = iter(b)
    head = [ids(x) for x, _ in islice(it, 5)]
    c = make_batches(backend, source(), spec(16))
    c.load_state_dict(b.state_dict())
    tail = [ids(x) for x, _ in islice(iter(c), 7)]
    assert head + tail == straight


@pytest.mark.parametrize("backend", ["torchvision", pytest.param("dali", marks=needs_dali)])
def test_array_backends_agree_on_order(backend: str) -> None:
    t = [ids(x) for x, _ in islice(iter(make_batches("tensor", source(), spec(16))), 8)]
    v = [ids(x) for x, _ in islice(iter(make_batches(backend, source(), spec(16))), 8)]
    assert t == v


def write_folder(root: Path, n: int) -> dict[int, int]:
    """`n` flat-colour images in two class folders, mixed sizes, modes and formats; value -> label.

    Image i is the colour 7*i everywhere, so it stays identifiable after any decode and resize.
    """
    from PIL import Image

    truth = {}
    for i in range(n):
        cls, value = i % 2, 7 * i
        (root / f"c{cls}").mkdir(parents=True, exist_ok=True)
        size = [(40, 30), (16, 16), (30, 52), (20, 20)][i % 4]
        im = Image.new("RGB", size, (value,) * 3) if i % 3 else Image.new("L", size, value)
        im.save(root / f"c{cls}" / f"{i:03d}.{'png' if i % 4 else 'jpg'}", quality=100)
        truth[value] = cls
    return truth


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_backends_yield_the_same_folder_pass(backend: str, tmp_path: Path) -> None:
    """One folder through every backend: the same contract, and the same images over a pass."""
    truth = write_folder(tmp_path / "imgs", 32)
    src = open_source(DataConfig(source=f"folder:{tmp_path / 'imgs'}"), 1, 16)
    seen = {}
    for images, labels in islice(iter(make_batches(backend, src, spec(8))), 4):  # 4 x 8: one whole pass
        assert images.dtype == torch.uint8 and images.shape == (8, 1, 16, 16) and images.device.type == "cpu"
        assert labels.dtype == torch.int64 and labels.shape == (8,) and labels.device.type == "cpu"
        flat = images.flatten(1).float()
        assert torch.all(flat.amax(1) - flat.amin(1) <= 2)  # flat colour stays flat (JPEG and resampling: +-1)
        for value, label in zip(flat.mean(1).tolist(), labels.tolist(), strict=True):
            seen[7 * round(value / 7)] = label
    assert seen == truth


@pytest.mark.parametrize("backend", ALL_BACKENDS)
def test_hflip_flips_some_images(backend: str) -> None:
    images = np.zeros((64, 1, 4, 4), dtype=np.uint8)
    images[:, :, :, 0] = 255  # a bright left column
    src = ArraySource("edge", images, np.zeros(64, dtype=np.int64), 1)
    x, _ = next(iter(make_batches(backend, src, spec(64, hflip=True))))
    flipped = (x[:, 0, 0, 3] == 255).sum().item()
    assert 10 < flipped < 54 and torch.all((x[:, 0, 0, 0] == 255) ^ (x[:, 0, 0, 3] == 255))


def test_too_small_a_dataset_and_unknown_backend() -> None:
    with pytest.raises(UsageError, match="fewer than one global batch"):
        make_batches("tensor", source(10), spec(16))
    with pytest.raises(UsageError, match="data.backend = 'nope'"):
        make_batches("nope", source(), spec(16))
    assert set(LOCAL_BACKENDS) <= set(BACKENDS)


# ---------------------------------------------------------------------------- sources


def test_npy_layouts_and_labels(tmp_path: Path) -> None:
    nhwc = np.random.default_rng(0).integers(0, 255, (10, 8, 8, 3), dtype=np.uint8)
    np.save(tmp_path / "a.npy", nhwc)
    np.save(tmp_path / "a.labels.npy", np.arange(10) % 3)
    src = open_source(DataConfig(source=f"npy:{tmp_path / 'a.npy'}"), 3, 8)
    assert src.images.shape == (10, 3, 8, 8) and np.array_equal(src.images[2].transpose(1, 2, 0), nhwc[2])
    assert src.num_classes == 3 and src.labels.tolist()[:4] == [0, 1, 2, 0]
    grey = open_source(DataConfig(source=f"npy:{tmp_path / 'a.npy'}"), 1, 16)  # luma + resize
    assert grey.images.shape == (10, 1, 16, 16)


def test_folder_with_classes_and_flat(tmp_path: Path) -> None:
    from PIL import Image

    for cls in ("cats", "dogs"):
        (tmp_path / "cls" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 30), (i * 50, 0, 0)).save(tmp_path / "cls" / cls / f"{i}.png")
    src = open_source(DataConfig(source=f"folder:{tmp_path / 'cls'}"), 3, 16)
    assert len(src) == 6 and src.num_classes == 2 and sorted(src.labels.tolist()) == [0, 0, 0, 1, 1, 1]
    images, _ = src.arrays()
    assert images.shape == (6, 3, 16, 16) and images.dtype == np.uint8
    (tmp_path / "flat").mkdir()
    Image.new("L", (20, 20), 7).save(tmp_path / "flat" / "x.jpg")
    flat = open_source(DataConfig(source=f"folder:{tmp_path / 'flat'}"), 1, 8)
    assert len(flat) == 1 and flat.num_classes == 1 and int(flat[0][0].mean()) == 7


@pytest.mark.parametrize(
    ("spec_", "message"),
    [
        ("folder:/no/such/dir", "no such folder"),
        ("npy:/no/such.npy", "file not found"),
        ("imagenet", "is not a known source; choose one of: fashion-mnist, mnist, cifar10, folder:PATH, npy:PATH"),
        ("folder", "is not a known source"),
    ],
)
def test_source_errors(spec_: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        open_source(DataConfig(source=spec_), 1, 28)


def test_empty_folder_is_named(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(UsageError, match=f"folder:{tmp_path}': no images found"):
        open_source(DataConfig(source=f"folder:{tmp_path}"), 1, 28)


def test_missing_dataset_lists_places_tried(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"data.source = 'mnist': no train split found; tried .*mnist"):
        open_source(DataConfig(source="mnist", root=str(tmp_path), download=False), 1, 28)


@pytest.mark.parametrize("backend", LOCAL_BACKENDS)
def test_resume_with_flips_continues_the_flip_sequence(backend: str) -> None:
    images = np.zeros((64, 1, 4, 4), dtype=np.uint8)
    images[:, :, :, 0] = np.arange(64, dtype=np.uint8)[:, None, None] + 1  # a left column naming the image
    src = ArraySource("edge", images, np.zeros(64, dtype=np.int64), 1)

    def flips(batches: list[torch.Tensor]) -> list[list[bool]]:
        return [(x[:, 0, 0, 3] > 0).tolist() for x in batches]

    straight = flips([x for x, _ in islice(iter(make_batches(backend, src, spec(16, hflip=True))), 8)])
    b = make_batches(backend, src, spec(16, hflip=True))
    head = flips([x for x, _ in islice(iter(b), 3)])
    c = make_batches(backend, src, spec(16, hflip=True))
    c.load_state_dict(b.state_dict())
    tail = flips([x for x, _ in islice(iter(c), 5)])
    assert head + tail == straight
