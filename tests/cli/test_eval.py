"""`fastgan eval` and in-training eval, on tiny runs: eval.json, the floor, usage errors,
metrics.jsonl records, best.json, and the best checkpoint surviving pruning. In-training eval under
two processes is in distributed/test_ddp.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fastgan.metrics.feature_net import FEATURE_NET_ID
from fastgan.run import checkpoint as ckpt
from tests.support import needs_fashion, run, train

pytestmark = pytest.mark.usefixtures("feature_cache")  # no test writes to the user's feature cache


def test_eval_writes_eval_json_beside_the_run(cli: CliRunner, tiny_config: Path, tmp_path: Path, feature_cache: Path) -> None:
    run_dir = tmp_path / "run"
    train(cli, tiny_config, run_dir)
    code, text = run(cli, "eval", run_dir / "checkpoints" / "nimg-000000128", "--n", "200")
    assert code == 0, text
    assert "fastgan eval" in text and "precision" in text and "Inception" in text
    result = json.loads((run_dir / "eval-n200.json").read_text())  # the run folder, not the checkpoint's
    assert set(result["metrics"]) == set(result["floor"]) == {"fd", "kid", "kid_std", "precision", "recall"}
    assert result["n"] == 200 and result["split"] == "test" and result["feature_net"] == FEATURE_NET_ID
    assert result["checkpoint"].endswith("nimg-000000128") and result["date"]
    # The npy source has no splits: reference and floor are its two halves (256 images).
    assert result["reference"].endswith("all-a") and result["floor_set"].endswith("all-b")
    # An untrained generator is far from the data; real halves are close to each other.
    assert result["floor"]["fd"] < result["metrics"]["fd"]
    assert result["floor"]["precision"] > result["metrics"]["precision"]
    cached = sorted(feature_cache.iterdir())
    assert len(cached) == 2  # the reference and the floor, never generated images

    code, _ = run(cli, "eval", run_dir, "--n", "200", "--metrics", "fd")
    assert code == 0
    again = json.loads((run_dir / "eval-n200.json").read_text())
    assert again["metrics"]["fd"] == pytest.approx(result["metrics"]["fd"], rel=0.05)  # same seed; G_ema of the end of the run
    assert sorted(feature_cache.iterdir()) == cached  # served from the cache


def test_unknown_metric_exits_2_with_the_allowed_list(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    # The metric is checked before the path is even read.
    code, text = run(cli, "eval", tmp_path / "no-such-run", "--metrics", "fd,fid")
    assert code == 2 and "unknown metric 'fid'" in text and "fd, kid, pr" in text
    code, text = run(cli, "eval", tmp_path / "no-such-run", "--metrics", ",")
    assert code == 2 and "--metrics" in text
    code, text = run(cli, "train", tiny_config, "--out", tmp_path / "r", "--set", 'train.eval_metrics=["fd", "is"]')
    assert code == 2 and "train.eval_metrics" in text and not (tmp_path / "r").exists()


@needs_fashion
def test_eval_against_the_fashion_mnist_test_split(cli: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "fashion.toml"
    config.write_text("[model]\nwidth = 4\n[data]\ndownload = false\n[train]\nbatch_size = 32\ntotal_images = 64\ncheckpoint_every = 64\n")
    run_dir = tmp_path / "run"
    train(cli, config, run_dir)
    code, text = run(cli, "eval", run_dir, "--n", "200", "--metrics", "fd,pr")
    assert code == 0, text
    result = json.loads((run_dir / "eval-n200.json").read_text())
    assert result["reference"] == "200 fashion-mnist test" and result["floor_set"] == "200 fashion-mnist train"
    assert set(result["metrics"]) == {"fd", "precision", "recall"}
    assert result["floor"]["fd"] < result["metrics"]["fd"] and result["floor"]["recall"] > 0.5


def test_in_training_eval_records_fd_and_keeps_the_best_checkpoint(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # Evals every 32 images, checkpoints every 64 with only the newest kept: the best may or may
    # not fall on a checkpoint, and pruning must keep it when it does.
    train(
        cli,
        tiny_config,
        run_dir,
        "train.total_images=256",
        "train.eval_every=32",
        "train.eval_samples=50",
        "train.keep_checkpoints=1",
    )
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "fd" in r]
    assert [r["nimg"] for r in evals] == list(range(32, 257, 32))
    best = json.loads((run_dir / "best.json").read_text())
    assert best["fd"] == min(r["fd"] for r in evals)
    assert best["checkpoint"] == (ckpt.checkpoint_name(best["nimg"]) if best["nimg"] % 64 == 0 else None)
    kept = {p.name for p in ckpt.list_checkpoints(run_dir)}
    marked = {p.name for p in ckpt.list_checkpoints(run_dir) if (p / ckpt.BEST_MARKER).exists()}
    assert kept == {"nimg-000000256"} | marked and marked == ({best["checkpoint"]} if best["checkpoint"] else set())


def test_publish_never_prunes_the_checkpoint_marked_best(tmp_path: Path) -> None:
    for nimg in (64, 128, 192):
        tmp = ckpt.tmp_dir(tmp_path, nimg)
        tmp.mkdir(parents=True)
        (tmp / "state.pt").write_bytes(b"")
        ckpt.publish(tmp_path, nimg, keep=1)
        if nimg == 64:
            (tmp_path / "checkpoints" / ckpt.checkpoint_name(64) / ckpt.BEST_MARKER).write_text("{}")
    assert [p.name for p in ckpt.list_checkpoints(tmp_path)] == ["nimg-000000064", "nimg-000000192"]


def test_truncated_eval_goes_beside_the_plain_one(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    code, text = run(cli, "eval", tmp_path / "no-such-run", "--truncation", "-1")  # checked before the path is read
    assert code == 2 and "--truncation -1: psi must be in [0, 1]" in text
    run_dir = tmp_path / "run"
    train(cli, tiny_config, run_dir)
    assert run(cli, "eval", run_dir, "--n", "100", "--metrics", "pr")[0] == 0
    plain = json.loads((run_dir / "eval-n100.json").read_text())
    code, text = run(cli, "eval", run_dir, "--n", "100", "--metrics", "pr", "--truncation", "1.0")
    assert code == 0, text
    assert json.loads((run_dir / "eval-n100.json").read_text())["metrics"] == plain["metrics"]  # psi 1 changes nothing
    code, text = run(cli, "eval", run_dir, "--n", "100", "--metrics", "pr", "--truncation", "0.5")
    assert code == 0 and "truncation 0.5" in text, text
    truncated = json.loads((run_dir / "eval-n100-truncation-0.5.json").read_text())
    assert truncated["truncation"] == 0.5 and plain["truncation"] == 1.0 and set(truncated["metrics"]) == {"precision", "recall"}


def test_an_eval_of_another_kind_never_replaces_an_earlier_one(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    train(cli, tiny_config, run_dir)
    assert run(cli, "eval", run_dir, "--n", "100", "--metrics", "fd")[0] == 0
    first = (run_dir / "eval-n100.json").read_bytes()
    code, text = run(cli, "eval", run_dir, "--n", "120", "--metrics", "fd")
    assert code == 0 and "eval-n120.json" in text, text
    assert (run_dir / "eval-n100.json").read_bytes() == first and json.loads((run_dir / "eval-n120.json").read_text())["n"] == 120


def test_eval_file_names_say_what_differs_from_the_default_kind() -> None:
    from fastgan.commands.eval import DEFAULT_N, eval_file_name

    assert eval_file_name("fashion", DEFAULT_N, "test", 1.0) == "eval.json"  # what earlier versions wrote
    assert eval_file_name("inception", 50_000, "train", 0.7) == "eval-inception-n50000-train-truncation-0.7.json"
    assert eval_file_name("fashion", DEFAULT_N, "test", 0.5) == "eval-truncation-0.5.json"
