"""The DALI backend's GPU path: nvJPEG ("mixed") decode and GPU operators yield batches on the
device. unit/test_dali.py checks the backend with DALI's CPU operators."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest
import torch

from fastgan.config import DataConfig
from fastgan.data.backends import make_batches
from fastgan.data.contract import StreamSpec
from fastgan.data.sources import open_source
from tests.support import folder_source

pytest.importorskip("nvidia.dali", reason="NVIDIA DALI not installed (pip install nvidia-dali-cuda130)")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (mixed JPEG decode and GPU operators)")
def test_gpu_pipelines_yield_on_the_device(tmp_path: Path, tiny_npy: Path) -> None:
    from PIL import Image

    (tmp_path / "j").mkdir()
    for i in range(16):
        Image.new("RGB", (48, 40), (8 * i, 0, 0)).save(tmp_path / "j" / f"{i:02d}.jpg")
    gpu = StreamSpec(8, 0, 1, seed=0, device=torch.device("cuda", 0), hflip=True)
    jpegs, arrays = folder_source(tmp_path / "j", 32, 3), open_source(DataConfig(source=f"npy:{tiny_npy}"), 3, 32)
    for src in (jpegs, arrays):  # mixed (nvJPEG) decode + GPU resize/crop/flip; host gather + GPU flip
        for images, labels in islice(iter(make_batches("dali", src, gpu)), 3):
            assert images.device.type == labels.device.type == "cuda"
            assert images.shape == (8, 3, 32, 32) and images.dtype == torch.uint8 and labels.dtype == torch.int64
