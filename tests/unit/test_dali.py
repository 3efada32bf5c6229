"""The DALI backend on folders: shards, resume (also from the main process's state on every rank),
flips and what it refuses, with DALI's CPU operators. Its GPU path is in gpu/test_cuda_dali.py, a
training run resumed through it in cli/test_stop_and_resume.py."""

from __future__ import annotations

import io
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch

from fastgan.config import DataConfig
from fastgan.data.backends import make_batches
from fastgan.data.contract import StreamSpec
from fastgan.data.folder import FolderSource
from fastgan.data.sources import open_source
from fastgan.errors import UsageError
from tests.support import folder_source

pytest.importorskip("nvidia.dali", reason="NVIDIA DALI not installed (pip install nvidia-dali-cuda130)")


def write_ids(root: Path, n: int, size: tuple[int, int] = (12, 10)) -> None:
    """A flat folder of `n` grey PNGs; image i is the colour i everywhere."""
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("L", size, i).save(root / f"{i:03d}.png")


def spec(batch: int, rank: int = 0, world: int = 1, hflip: bool = False, seed: int = 3) -> StreamSpec:
    return StreamSpec(batch, rank, world, seed=seed, device=torch.device("cpu"), hflip=hflip, num_workers=1)


def ids(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].tolist()


def take(src: FolderSource, s: StreamSpec, n: int, state: dict | None = None) -> tuple[list[list[int]], dict]:
    """`n` batches' ids from a fresh backend (restored from `state` if given), and its state after them."""
    batches = make_batches("dali", src, s)
    if state is not None:
        batches.load_state_dict(state)
    out = [ids(x) for x, _ in islice(iter(batches), n)]
    return out, batches.state_dict()


def test_flat_folder_mixed_sizes_to_rgb(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "f").mkdir()
    Image.new("RGB", (40, 24), (200, 10, 10)).save(tmp_path / "f" / "wide.jpg", quality=100)
    Image.new("L", (8, 30), 90).save(tmp_path / "f" / "tall.png")
    Image.new("RGBA", (16, 16), (10, 200, 10, 128)).save(tmp_path / "f" / "alpha.png")
    Image.new("P", (50, 50), 3).save(tmp_path / "f" / "palette.png")
    images, labels = next(iter(make_batches("dali", folder_source(tmp_path / "f", 16, 3), spec(4))))
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.uint8 and labels.tolist() == [0, 0, 0, 0]
    colours = {tuple(int(v) for v in im[:, 8, 8]) for im in images}
    assert any(abs(r - 200) <= 2 and g <= 12 for r, g, _ in colours)  # the red JPEG, cropped and resized
    assert (90, 90, 90) in colours  # grey widened to RGB


def test_each_pass_covers_the_folder_and_shards_are_disjoint(tmp_path: Path) -> None:
    write_ids(tmp_path / "ids", 42)
    src = folder_source(tmp_path / "ids")
    one, _ = take(src, spec(6), 7)  # 7 x 6 = 42: exactly one pass
    assert sorted(i for b in one for i in b) == list(range(42))
    shards = [take(src, spec(4, rank=r, world=2), 5)[0] for r in range(2)]  # 21 per shard: 5 batches, 1 dropped
    seen = [{i for b in shard for i in b} for shard in shards]
    assert len(seen[0]) == len(seen[1]) == 20 and not seen[0] & seen[1]


def test_passes_are_reshuffled_and_the_seed_changes_the_order(tmp_path: Path) -> None:
    write_ids(tmp_path / "ids", 24)
    src = folder_source(tmp_path / "ids")
    two_passes, _ = take(src, spec(8), 6)
    assert two_passes[:3] != two_passes[3:] and sorted(sum(two_passes[3:], [])) == list(range(24))
    assert take(src, spec(8, seed=4), 3)[0] != two_passes[:3]


@pytest.mark.parametrize("hflip", [False, True])
def test_resume_continues_exactly(tmp_path: Path, hflip: bool) -> None:
    write_ids(tmp_path / "ids", 30, size=(10, 10))
    src = folder_source(tmp_path / "ids")

    def run(n: int, state: dict | None = None) -> tuple[list[torch.Tensor], dict]:
        batches = make_batches("dali", src, spec(4, hflip=hflip))
        if state is not None:
            batches.load_state_dict(state)
        return [x for x, _ in islice(iter(batches), n)], batches.state_dict()

    straight, _ = run(17)  # 7 batches a pass (2 images dropped): crosses two pass boundaries
    head, state = run(9)
    buf = io.BytesIO()
    torch.save(state, buf)  # as the trainer saves it, and loads it back with weights_only
    state = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    tail, _ = run(8, state)
    assert all(torch.equal(a, b) for a, b in zip(head + tail, straight, strict=True))


def test_the_main_process_state_resumes_every_rank(tmp_path: Path) -> None:
    """The trainer saves the main process's data state only; rank 1 must still continue its own shard."""
    write_ids(tmp_path / "ids", 41)  # uneven shards: 21 and 20 images
    src = folder_source(tmp_path / "ids")
    _, rank0_state = take(src, spec(4, rank=0, world=2), 7)
    straight1, _ = take(src, spec(4, rank=1, world=2), 12)
    resumed1, _ = take(src, spec(4, rank=1, world=2), 5, state=rank0_state)
    assert resumed1 == straight1[7:]


def test_flips_differ_between_ranks(tmp_path: Path) -> None:
    from PIL import Image

    (tmp_path / "edge").mkdir()
    for i in range(64):
        im = np.zeros((8, 8), dtype=np.uint8)
        im[:, 0] = 255  # a bright left column
        Image.fromarray(im).save(tmp_path / "edge" / f"{i:02d}.png")
    src = folder_source(tmp_path / "edge")
    flips = []
    for rank in range(2):
        x, _ = next(iter(make_batches("dali", src, spec(32, rank=rank, world=2, hflip=True))))
        assert torch.all((x[:, 0, 0, 0] == 255) ^ (x[:, 0, 0, 7] == 255))
        flips.append(x[:, 0, 0, 7] == 255)
    assert 4 < int(flips[0].sum()) < 28 and not torch.equal(flips[0], flips[1])


def test_state_from_another_backend(tmp_path: Path, tiny_npy: Path) -> None:
    """Arrays resume from a plain batch count; a folder warns and starts a new pass."""
    arrays = open_source(DataConfig(source=f"npy:{tiny_npy}"), 1, 28)
    tensor = [x for x, _ in islice(iter(make_batches("tensor", arrays, spec(16))), 20)]
    dali = make_batches("dali", arrays, spec(16))
    dali.load_state_dict({"batches_taken": 12})
    assert all(torch.equal(a, b) for a, b in zip(islice((x for x, _ in dali), 4), tensor[12:16], strict=True))
    again = make_batches("dali", arrays, spec(16))
    again.load_state_dict(dali.state_dict())  # now a DALI checkpoint, still 12 batches ahead of DALI's count
    assert all(torch.equal(a, b) for a, b in zip(islice((x for x, _ in again), 4), tensor[16:20], strict=True))
    write_ids(tmp_path / "ids", 16)
    with pytest.warns(UserWarning, match="restarts at a new pass"):
        make_batches("dali", folder_source(tmp_path / "ids"), spec(4)).load_state_dict({"batches_taken": 3})


def test_refuses_gif_and_missing_dali(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    write_ids(tmp_path / "mix", 4)
    Image.new("L", (8, 8), 1).save(tmp_path / "mix" / "anim.gif")
    with pytest.raises(UsageError, match="DALI cannot decode 1 GIF file"):
        make_batches("dali", folder_source(tmp_path / "mix"), spec(4))
    import fastgan.data.dali_backend as dali_backend

    monkeypatch.setattr(dali_backend, "dali_available", lambda: False)
    with pytest.raises(UsageError, match=r"needs NVIDIA DALI: pip install"):
        make_batches("dali", folder_source(tmp_path / "mix"), spec(4))
