"""`fastgan data check`, the bad-file scan every folder source runs, and `fastgan data prepare`."""

from __future__ import annotations

import io
import json
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fastgan.config import DataConfig
from fastgan.data.backends import make_batches
from fastgan.data.check import image_problem
from fastgan.data.contract import StreamSpec
from fastgan.data.folder import FolderSource
from fastgan.data.sources import ArraySource, open_source
from fastgan.errors import UsageError
from tests.support import run


def jpeg_bytes(size: int = 32) -> bytes:
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "JPEG")
    return buf.getvalue()


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """One good JPEG and the four usual kinds of bad file."""
    root = tmp_path / "mixed"
    root.mkdir()
    (root / "good.jpg").write_bytes(jpeg_bytes())
    (root / "cut.jpg").write_bytes(jpeg_bytes()[:400])  # PIL's verify() passes this one
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.png").write_text("not a picture")
    from PIL import Image

    Image.fromarray(np.ones((8, 8), dtype=np.float32)).save(root / "float.tif")
    return root


def test_each_kind_of_bad_file_has_its_reason(mixed: Path) -> None:
    assert image_problem(mixed / "good.jpg") is None
    assert (image_problem(mixed / "cut.jpg") or "").startswith("truncated")
    assert image_problem(mixed / "empty.jpg") == "empty file"
    assert image_problem(mixed / "notes.png") == "not an image"
    assert (image_problem(mixed / "float.tif") or "").startswith("unreadable mode 'F'")


def test_data_check_lists_bad_files_and_exits_2(cli: CliRunner, mixed: Path) -> None:
    code, out = run(cli, "data", "check", mixed)
    assert code == 2
    lines = out.splitlines()
    assert f"{mixed / 'cut.jpg'}: truncated" in out and f"{mixed / 'empty.jpg'}: empty file" in lines
    assert f"{mixed / 'notes.png'}: not an image" in lines and "float.tif: unreadable mode 'F'" in out
    assert "good.jpg" not in out and "Traceback" not in out
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: 4 of 5 images in") and "data.skip_bad = true" in errors[0]


def test_data_check_clean_and_missing(cli: CliRunner, mixed: Path, tmp_path: Path) -> None:
    for name in ("cut.jpg", "empty.jpg", "notes.png", "float.tif"):
        (mixed / name).unlink()
    assert run(cli, "data", "check", mixed) == (0, f"{mixed}: all 1 images decode\n")
    code, out = run(cli, "data", "check", tmp_path / "nowhere")
    assert code == 2 and "no such folder" in out
    (tmp_path / "empty").mkdir()
    code, out = run(cli, "data", "check", tmp_path / "empty")
    assert code == 2 and "no images found" in out


def test_training_refuses_bad_files_unless_skip_bad(mixed: Path) -> None:
    with pytest.raises(UsageError, match=r"4 of 5 images cannot be decoded: cut.jpg: truncated .*empty.jpg: empty file") as e:
        open_source(DataConfig(source=f"folder:{mixed}"), 3, 16)
    assert "data.skip_bad = true" in str(e.value) and f"fastgan data check {mixed}" in str(e.value)
    with pytest.warns(UserWarning, match="skipping 4 undecodable images"):
        src = open_source(DataConfig(source=f"folder:{mixed}", skip_bad=True), 3, 16)
    assert isinstance(src, FolderSource)
    assert [f.name for f in src.files] == ["good.jpg"] and len(src.labels) == 1 and len(src.skipped) == 4


def test_prepare_round_trip_into_the_tensor_backend(cli: CliRunner, tmp_path: Path) -> None:
    from PIL import Image

    for cls in ("cats", "dogs"):
        (tmp_path / "src" / cls).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (30 + i, 24), (40 * i + (100 if cls == "dogs" else 0), 0, 0)).save(tmp_path / "src" / cls / f"{i}.png")
    dst = tmp_path / "out" / "pets.npy"
    code, out = run(cli, "data", "prepare", tmp_path / "src", dst, "--resolution", "16")
    assert code == 0, out
    images = np.load(dst)
    meta = json.loads(dst.with_suffix(".json").read_text())
    assert images.shape == (8, 3, 16, 16) and images.dtype == np.uint8
    assert meta["classes"] == ["cats", "dogs"] and meta["labels"] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert meta["count"] == 8 and meta["resolution"] == 16 and meta["channels"] == 3 and meta["source"] == str(tmp_path / "src")
    folder_images, _ = open_source(DataConfig(source=f"folder:{tmp_path / 'src'}"), 3, 16).arrays()
    assert np.array_equal(images, folder_images)  # the same decode as training from the folder

    src = open_source(DataConfig(source=f"npy:{dst}"), 3, 16)
    assert isinstance(src, ArraySource) and src.num_classes == 2
    spec = StreamSpec(4, 0, 1, seed=0, device=torch.device("cpu"), num_workers=0)
    batches = list(islice(iter(make_batches("tensor", src, spec)), 2))  # one pass
    pairs = sorted((int(x[0, 8, 8]), int(y)) for xs, ys in batches for x, y in zip(xs, ys, strict=True))
    assert pairs == sorted((int(im[0, 8, 8]), lab) for im, lab in zip(folder_images, meta["labels"], strict=True))


def test_prepare_grey_and_usage_errors(cli: CliRunner, tmp_path: Path, mixed: Path) -> None:
    code, out = run(cli, "data", "prepare", mixed, tmp_path / "x.npy", "--resolution", "8", "--channels", "1", "--skip-bad")
    assert code == 0, out
    assert np.load(tmp_path / "x.npy").shape == (1, 1, 8, 8) and json.loads((tmp_path / "x.json").read_text())["skipped"] == 4
    for args, message in [
        ((mixed, tmp_path / "y.npy", "--resolution", "8"), "4 of 5 images cannot be decoded"),
        ((mixed, tmp_path / "y.bin", "--resolution", "8"), "must end in .npy"),
        ((mixed, tmp_path / "y.npy", "--resolution", "8", "--channels", "2"), "choose 1 (grey) or 3 (RGB)"),
        ((tmp_path / "nowhere", tmp_path / "y.npy", "--resolution", "8"), "no such folder"),
    ]:
        code, out = run(cli, "data", "prepare", *args)
        assert code == 2 and message in out and "Traceback" not in out, out
    assert not (tmp_path / "y.npy").exists() and not list(tmp_path.glob(".*.tmp"))
