"""The real `fastgan` CLI with torchvision's CIFAR10 replaced by a fake that downloads nothing:

    FASTGAN_FAKE_LOG=calls.jsonl python tests/distributed/offline_cli.py train ...

Each construction appends a line to FASTGAN_FAKE_LOG: the process's rank, the split, whether it
"downloaded" (the split's file was missing: it sleeps DOWNLOAD_S, as a download takes a while,
then writes it), and when it started and ended. Processes that call it at once overlap in time,
and each of them downloads.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

DOWNLOAD_S = 1.0


class FakeCIFAR10:
    classes = [f"class{i}" for i in range(10)]

    def __init__(self, root: str, train: bool = True, download: bool = False) -> None:
        start = time.time()
        file = Path(root) / "cifar-10-batches-py" / ("data_batch_1" if train else "test_batch")
        downloaded = not file.is_file()
        if downloaded:
            assert download, "the fake was asked to read a dataset that is not there"
            time.sleep(DOWNLOAD_S)
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(b"")
        rng = np.random.default_rng(0 if train else 1)
        self.data = rng.integers(0, 256, size=(64, 32, 32, 3), dtype=np.uint8)  # [N, H, W, C], as torchvision's
        self.targets = [i % 10 for i in range(64)]
        call = {"rank": int(os.environ.get("RANK", "0")), "train": train, "downloaded": downloaded, "start": start, "end": time.time()}
        with open(os.environ["FASTGAN_FAKE_LOG"], "a") as f:
            f.write(json.dumps(call) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root
    import torchvision

    torchvision.datasets.CIFAR10 = FakeCIFAR10  # type: ignore[misc,assignment]
    from fastgan.cli import main

    sys.argv[0] = "fastgan"
    main()
