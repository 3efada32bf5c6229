"""`fastgan eval --features inception --weights PATH`, with a tiny TorchScript stand-in for the
detector (the real 95 MB file is never downloaded): the same call signature, 2048 features."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from tests.support import run

pytestmark = pytest.mark.usefixtures("feature_cache")  # no test writes to the user's feature cache


class StandIn(torch.nn.Module):
    """Like inception-2015-12-05.pt: uint8/0..255 RGB [N, 3, H, W] of any size, 2048-d features."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(3 * 4 * 4, 2048)

    def forward(self, img: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        assert img.shape[1] == 3
        x = F.adaptive_avg_pool2d(img.float() / 255, 4).flatten(1)
        features = torch.relu(self.proj(x))
        return features if return_features else features.softmax(1)


@pytest.fixture
def stand_in(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "inception-2015-12-05.pt"
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated in torch 2.14
        torch.jit.script(StandIn()).save(str(path))
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_eval_with_the_torchscript_detector(cli: CliRunner, tiny_config: Path, tmp_path: Path, stand_in: tuple[Path, str]) -> None:
    weights, digest = stand_in
    run_dir = tmp_path / "run"
    code, text = run(cli, "train", tiny_config, "--out", run_dir)
    assert code == 0, text
    code, text = run(cli, "eval", run_dir, "--n", "100", "--features", "inception", "--weights", weights, "--weights-sha256", digest)
    assert code == 0, text
    result = json.loads((run_dir / "eval-inception-n100.json").read_text())
    assert result["feature_net"] == f"inception-2015-12-05-{digest[:16]}"  # the exact file, in the record
    assert set(result["metrics"]) == {"fd", "kid", "kid_std", "precision", "recall"}
    assert result["floor"]["fd"] < result["metrics"]["fd"]  # untrained G against real halves
    assert "Inception-v3" in text


def test_bad_detectors_are_usage_errors(cli: CliRunner, tiny_config: Path, tmp_path: Path, stand_in: tuple[Path, str]) -> None:
    weights, _ = stand_in
    run_dir = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", run_dir)[0] == 0
    code, text = run(cli, "eval", run_dir, "--features", "inception", "--weights", weights, "--weights-sha256", "0" * 64)
    assert code == 2 and "does not match" in text and "Traceback" not in text
    code, text = run(cli, "eval", run_dir, "--features", "inception", "--weights", weights)  # not NVIDIA's file
    assert code == 2 and "does not match the published" in text and "--weights-sha256" in text
    code, text = run(cli, "eval", run_dir, "--features", "inception", "--weights", tmp_path / "nope.pt")
    assert code == 2 and "nvlabs-fi-cdn.nvidia.com" in text  # says where to get it
    code, text = run(cli, "eval", run_dir, "--features", "inception")
    assert code == 2 and "--weights" in text
    not_script = tmp_path / "garbage.pt"
    not_script.write_bytes(b"not a zip file")
    garbage_sha = hashlib.sha256(not_script.read_bytes()).hexdigest()
    code, text = run(cli, "eval", run_dir, "--features", "inception", "--weights", not_script, "--weights-sha256", garbage_sha)
    assert code == 2 and "TorchScript" in text


class NotInception(torch.nn.Module):
    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return img.float().flatten(1)[:, :7]


def test_weights_flags_are_checked_before_any_work(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    assert run(cli, "train", tiny_config, "--out", run_dir)[0] == 0
    other = tmp_path / "other.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(NotInception()).save(str(other))
    digest = hashlib.sha256(other.read_bytes()).hexdigest()
    code, text = run(cli, "eval", run_dir, "--features", "inception", "--weights", other, "--weights-sha256", digest)
    assert code == 2 and "not the Inception-v3 feature network" in text and "Traceback" not in text
    code, text = run(cli, "eval", run_dir, "--features", "inception", "--weights", other, "--weights-sha256", "abc")
    assert code == 2 and "64 hex digits" in text
    code, text = run(cli, "eval", run_dir, "--features", "inception", "--weights", other, "--weights-sha256", f" {digest.upper()} ")
    assert code == 2 and "not the Inception-v3" in text  # pasted with spaces, upper case: the hash is accepted
    code, text = run(cli, "eval", run_dir, "--weights", other)  # --features fashion (the default)
    assert code == 2 and "--features inception" in text
