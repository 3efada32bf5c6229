"""Run folders written by an earlier fastgan (tests/fixtures/legacy-runs, made by
tests/fixtures/make_legacy_runs.py at the commit named in MADE.json) resume with today's code,
bitwise as they did then: from the older checkpoint to the newer one, and past the end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from typer.testing import CliRunner

from fastgan.hardware import cpu_info
from tests.support import REPO, needs_fashion, run

LEGACY = REPO / "tests" / "fixtures" / "legacy-runs"
MADE = json.loads((LEGACY / "MADE.json").read_text())
# The fixture's numbers come from one CPU's kernels: another ISA, thread count or CPU model (oneDNN
# blocks its loops by the caches) sums in another order. The first fixture did not record its model.
SAME_KERNELS = (
    torch.backends.cpu.get_cpu_capability() == MADE["cpu_capability"]
    and torch.get_num_threads() == MADE["threads"]
    and MADE.get("cpu_model") == cpu_info()["model"]
)


def weights(state: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return {f"{net}.{k}": v for net in ("G", "D", "G_ema") for k, v in state[net].items()}


def assert_same(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    assert got.keys() == want.keys()
    for k in want:
        if SAME_KERNELS:
            assert torch.equal(got[k], want[k]), f"{k} differs from the earlier fastgan's"
        else:
            torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-5, msg=f"{k} (another CPU ISA: within rounding)")


def state_at(run_dir: Path, nimg: int) -> dict[str, torch.Tensor]:
    return weights(torch.load(run_dir / "checkpoints" / f"nimg-{nimg:09d}" / "state.pt", weights_only=True))


@needs_fashion
@pytest.mark.parametrize("recipe", ["r3gan-recipe", "dcgan-tricks"])
def test_a_run_of_an_earlier_fastgan_resumes_bitwise(cli: CliRunner, tmp_path: Path, recipe: str) -> None:
    src = LEGACY / recipe
    want_128 = state_at(src, 128)

    older = tmp_path / "older"
    shutil.copytree(src, older)
    code, out = run(cli, "train", "--resume", older, "--from", "nimg-000000064")
    assert code == 0, out
    assert_same(state_at(older, 128), want_128)  # 64 -> 128 as the earlier code trained it in one go

    longer = tmp_path / "longer"
    shutil.copytree(src, longer)
    code, out = run(cli, "train", "--resume", longer, "--set", "train.total_images=192")
    assert code == 0, out
    assert_same(state_at(longer, 192), load_file(str(src / "expected-192.safetensors")))
