"""Post-hoc EMA end to end on the tiny config: snapshots, a reconstruction against a profile that
was tracked directly, `fastgan ema`/`sample`/`eval --sigma-rel`, resume (bitwise, rollback),
pruning, and the resume rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from fastgan.config import load_config
from fastgan.run import checkpoint as ckpt
from fastgan.run.generator import load_safetensors
from fastgan.run.posthoc_ema import combine, list_snapshots, plan_reconstruction
from tests.support import FAULT_CLI, REPO, run, train

PHEMA = ("train.phema_every=16", "train.phema_sigma_rels=[0.05, 0.10, 0.07]")


def snapshot(path: Path) -> tuple[dict[str, str], dict[str, bytes]]:
    """A snapshot's metadata and its tensors' exact bytes."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata()), {k: f.get_tensor(k).numpy().tobytes() for k in f.keys()}  # noqa: SIM118


def flat(weights: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([weights[k].flatten().double() for k in sorted(weights)])


def test_a_reconstruction_matches_the_profile_tracked_directly(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    """0.07 rebuilt from the 0.05 and 0.10 snapshots alone, against the 0.07 tracked beside them.
    The error is measured against the gap between the two tracked profiles (they are all close to
    G): a snapshot every step gave 2e-5 of it (512 images), one every 4 steps 6e-3."""
    out = train(cli, tiny_config, tmp_path / "run", *PHEMA, "train.total_images=256")
    snapshots = list_snapshots(out)
    assert sorted({s.nimg for s in snapshots}) == list(range(16, 257, 16))
    tracked = {s.sigma_rel: flat(load_safetensors(s.path)) for s in snapshots if s.nimg == 256}
    plan = plan_reconstruction([s for s in snapshots if s.sigma_rel != 0.07], 0.07)
    assert {s.sigma_rel for s in plan.snapshots} == {0.05, 0.10} and plan.fit_error < 0.01
    rebuilt = flat(combine(plan))
    gap = (tracked[0.05] - tracked[0.10]).norm()
    assert (tracked[0.07] - tracked[0.05]).norm() > 0.2 * gap  # 0.07 really lies between them
    assert (rebuilt - tracked[0.07]).norm() < 1e-3 * gap
    assert (rebuilt - tracked[0.07]).norm() < 1e-5 * tracked[0.07].norm()
    # Too few snapshots (the last of each) cannot: the same measure fails.
    sparse = plan_reconstruction([s for s in snapshots if s.sigma_rel != 0.07 and s.nimg == 256], 0.07)
    assert (flat(combine(sparse)) - tracked[0.07]).norm() > 1e-2 * gap


def test_fastgan_ema_exports_a_generator_that_sample_loads(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = train(cli, tiny_config, tmp_path / "run", "train.phema_every=32")
    code, text = run(cli, "ema", out, "--sigma-rel", "0.07")
    assert code == 0, text
    exported = out / "posthoc-ema" / "s0.070" / "generator.safetensors"
    assert "sigma_rel 0.070 at 128 images from 8 snapshots (4 x 0.050, 4 x 0.100)" in text and str(exported) in text
    assert (exported.parent / "config.toml").is_file()
    code, text = run(cli, "sample", exported, "--out", tmp_path / "a.png", "--n", "8")
    assert code == 0 and (tmp_path / "a.png").is_file(), text
    code, text = run(cli, "sample", out, "--sigma-rel", "0.07", "--out", tmp_path / "b.npy", "--n", "8")
    assert code == 0 and "post-hoc EMA, sigma_rel 0.070" in text, text
    # The run's own G_ema is not the reconstruction: the exported parameters differ from it.
    own, rebuilt = load_safetensors(out / "generator.safetensors"), load_safetensors(exported)
    assert any(not torch.equal(own[k], rebuilt[k]) for k in rebuilt if k.endswith("weight"))
    # --out FILE writes there, config beside it; the run's own generator is never replaced.
    code, text = run(cli, "ema", out, "--sigma-rel", "0.1", "--out", tmp_path / "x" / "g.safetensors")
    assert code == 0 and (tmp_path / "x" / "config.toml").is_file(), text
    code, text = run(cli, "ema", out, "--sigma-rel", "0.07", "--out", out / "generator.safetensors")
    assert code == 2 and "run folder" in text, text


def test_export_sigma_rel_writes_the_reconstruction_as_onnx(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    out = train(cli, tiny_config, tmp_path / "run", "train.phema_every=32")
    assert run(cli, "ema", out, "--sigma-rel", "0.07")[0] == 0
    for source, onnx, extra in (
        (out, "posthoc.onnx", ["--sigma-rel", "0.07"]),
        (out / "posthoc-ema" / "s0.070" / "generator.safetensors", "exported.onnx", []),
        (out, "own.onnx", []),
    ):
        code, text = run(cli, "export", source, "--onnx", tmp_path / onnx, *extra)
        assert code == 0, text
    assert "post-hoc EMA, sigma_rel 0.070" in run(cli, "export", out, "--onnx", tmp_path / "again.onnx", "--sigma-rel", "0.07")[1]
    z = {"z": torch.randn(4, load_config(out / "config.toml").model.z_dim).numpy()}
    images = {}
    for name in ("posthoc.onnx", "exported.onnx", "own.onnx"):
        images[name] = ort.InferenceSession(str(tmp_path / name), providers=["CPUExecutionProvider"]).run(None, z)[0]
    assert abs(images["posthoc.onnx"] - images["exported.onnx"]).max() < 1e-4  # what `fastgan ema` rebuilds
    assert abs(images["posthoc.onnx"] - images["own.onnx"]).max() > 1e-3  # not the run's own G_ema
    code, text = run(cli, "export", out, "--onnx", tmp_path / "bad.onnx", "--sigma-rel", "0.5")
    assert code == 2 and "must be in (0, 0.289]" in text and not (tmp_path / "bad.onnx").exists(), text


def test_report_sigma_rel_shows_the_rebuilt_g_ema_beside_the_latest_grid(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import base64
    import io
    import re

    from PIL import Image

    out = train(cli, tiny_config, tmp_path / "run", "train.phema_every=32")
    code, text = run(cli, "report", out, "--sigma-rel", "0.07", "--out", tmp_path / "r.html")
    assert code == 0, text
    page = (tmp_path / "r.html").read_text()
    assert "post-hoc EMA, sigma_rel 0.070 at 128 images, on the latest grid&#x27;s latents" in page
    grids = re.findall(r'alt="run (latest|post-hoc EMA)" src="data:image/png;base64,([^"]+)"', page)
    images = {name: Image.open(io.BytesIO(base64.b64decode(data))) for name, data in grids}
    assert set(images) == {"latest", "post-hoc EMA"}
    latest, rebuilt = (np.asarray(images[k]) for k in ("latest", "post-hoc EMA"))
    assert latest.shape == rebuilt.shape and not np.array_equal(latest, rebuilt)  # same latents, other weights
    plain = train(cli, tiny_config, tmp_path / "plain")  # no snapshots: refused, naming the run, nothing written
    code, text = run(cli, "report", out, plain, "--sigma-rel", "0.07", "--out", tmp_path / "r2.html")
    assert code == 2 and "no post-hoc EMA snapshots" in text and str(plain) in text and not (tmp_path / "r2.html").exists(), text


def test_ema_refusals_are_one_line(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = train(cli, tiny_config, tmp_path / "run")  # phema off: no snapshots
    code, text = run(cli, "ema", out, "--sigma-rel", "0.07")
    assert code == 2 and "no post-hoc EMA snapshots" in text and "train.phema_every" in text, text
    code, text = run(cli, "ema", out, "--sigma-rel", "0.4")
    assert code == 2 and "must be in (0, 0.289]" in text, text
    code, text = run(cli, "train", tiny_config, "--out", tmp_path / "bad", "--set", "train.phema_sigma_rels=[0.05, 0.5]")
    assert code == 2 and "train.phema_sigma_rels" in text, text
    assert not list_snapshots(out) and not (out / "phema").exists()
    for given in (out / "checkpoints" / "nimg-000000128", out / "generator.safetensors"):
        code, text = run(cli, "sample", given, "--sigma-rel", "0.07", "--out", tmp_path / "s.png")
        assert code == 2 and "give the run folder" in text and str(out) in text, text
    code, text = run(cli, "eval", out, "--sigma-rel", "0.05,x")
    assert code == 2 and "numbers separated by commas" in text, text


def test_eval_sigma_rel_scores_each_and_names_the_best(cli: CliRunner, tiny_config: Path, tmp_path: Path, feature_cache: Path) -> None:
    out = train(cli, tiny_config, tmp_path / "run", "train.phema_every=32")
    code, text = run(cli, "eval", out, "--n", "32", "--metrics", "fd")
    assert code == 0, text
    plain = (out / "eval-n32.json").read_text()
    code, text = run(cli, "eval", out, "--n", "32", "--metrics", "fd", "--sigma-rel", "0.05,0.07,0.15")
    assert code == 0, text
    result = json.loads((out / "eval-phema-n32.json").read_text())
    assert list(result["results"]) == ["0.050", "0.070", "0.150"]
    scores = {s: r["metrics"]["fd"] for s, r in result["results"].items()}
    best = min(scores, key=lambda s: scores[s])
    assert result["best"] == {"sigma_rel": float(best), "metric": "fd", "value": scores[best]}
    assert f"best sigma_rel = {best}" in text
    assert (out / "eval-n32.json").read_text() == plain  # the plain eval is another kind: untouched
    # the best's scores in eval.json's form: `fastgan report` lists them beside the plain eval
    assert result["metrics"] == result["results"][best]["metrics"] and result["sigma_rel"] == float(best)
    code, text = run(cli, "report", out, "--out", tmp_path / "report.html")
    assert code == 0, text
    page = (tmp_path / "report.html").read_text()
    assert "eval-phema-n32.json" in page and "eval-n32.json" in page


def test_snapshots_survive_a_resume_bitwise(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    """128 images then 64 more, resumed, gives the same snapshots and profile state as 192 straight."""
    sets = ("train.phema_every=32",)
    straight = train(cli, tiny_config, tmp_path / "straight", *sets, "train.total_images=192")
    resumed = train(cli, tiny_config, tmp_path / "resumed", *sets)
    code, text = run(cli, "train", "--resume", resumed, "--set", "train.total_images=192")
    assert code == 0, text
    a, b = list_snapshots(straight), list_snapshots(resumed)
    assert [(s.nimg, s.sigma_rel) for s in a] == [(s.nimg, s.sigma_rel) for s in b] and len(a) == 12
    for x, y in zip(a, b, strict=True):  # (not the bytes: safetensors writes metadata keys in any order)
        assert snapshot(x.path) == snapshot(y.path), x.path.name
    state_a = torch.load(straight / "checkpoints" / "nimg-000000192" / "state.pt", weights_only=True)
    state_b = torch.load(resumed / "checkpoints" / "nimg-000000192" / "state.pt", weights_only=True)
    assert state_a["phema"]["sigma_rels"] == [0.05, 0.10]
    assert torch.equal(state_a["phema"]["flat"], state_b["phema"]["flat"])


@pytest.mark.parametrize(("fault", "code", "newest"), [("term@48:0", 143, 48), ("kill@96:0", -9, 80)])
def test_snapshots_survive_a_stop_or_a_crash_bitwise(
    cli: CliRunner, tiny_config: Path, tmp_path: Path, fault: str, code: int, newest: int
) -> None:
    """SIGTERM at 48 images (the stop writes its snapshots and a checkpoint there) or SIGKILL in
    the step that reaches 96 (the newest checkpoint is at 64, the newest snapshot at 80):
    --auto-resume ends with the snapshots of a run never stopped; the ones a crash left past its
    checkpoint are moved aside and written again."""
    sets = ["--set", "train.phema_every=16"]
    # Bitwise needs one thread count throughout: the faulty run's subprocess has OMP_NUM_THREADS=1,
    # and how oneDNN splits a reduction between threads changes its last bits.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        straight = train(cli, tiny_config, tmp_path / "straight", "train.phema_every=16")
        bitwise_after_a_fault(cli, tiny_config, tmp_path, fault, code, newest, sets, straight)
    finally:
        torch.set_num_threads(threads)


def bitwise_after_a_fault(  # noqa: PLR0913
    cli: CliRunner, tiny_config: Path, tmp_path: Path, fault: str, code: int, newest: int, sets: list[str], straight: Path
) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, str(FAULT_CLI), "train", str(tiny_config), "--out", str(out), *sets]
    env = {**os.environ, "PYTHONPATH": str(REPO), "FASTGAN_FAULT": fault, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == code, result.stderr[-2000:]
    assert max(s.nimg for s in list_snapshots(out)) == newest
    code_, text = run(cli, "train", tiny_config, "--out", out, "--auto-resume", *sets)
    assert code_ == 0, text
    a, b = list_snapshots(straight), list_snapshots(out)
    assert [(s.nimg, s.sigma_rel) for s in a] == [(s.nimg, s.sigma_rel) for s in b]
    for x, y in zip(a, b, strict=True):
        assert snapshot(x.path) == snapshot(y.path), x.path.name
    superseded = sorted(p.name for p in (out / "phema" / ckpt.SUPERSEDED).glob("*")) if code == -9 else []
    assert superseded == (["nimg-000000080-s0.050.safetensors", "nimg-000000080-s0.100.safetensors"] if code == -9 else [])
    assert "post-hoc EMA snapshot(s) written past 64 images" in text if code == -9 else "post-hoc" not in text


def test_a_rollback_moves_newer_snapshots_aside(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = train(cli, tiny_config, tmp_path / "run", "train.phema_every=32")
    before = {s.path.name: snapshot(s.path) for s in list_snapshots(out)}
    code, text = run(cli, "train", "--resume", out, "--from", "64", "--set", "optim.G.lr=1e-3")
    assert code == 0, text
    assert "moved 4 post-hoc EMA snapshot(s) written past 64 images to phema/superseded/" in text, text
    superseded = sorted(p.name for p in (out / "phema" / ckpt.SUPERSEDED).iterdir())
    assert superseded == sorted(n for n in before if int(n[5:14]) > 64)
    for name in superseded:  # the old path's snapshots are kept as they were
        assert snapshot(out / "phema" / ckpt.SUPERSEDED / name) == before[name]
    now = {s.path.name: snapshot(s.path) for s in list_snapshots(out)}
    assert sorted(now) == sorted(before)  # the new path wrote its own 96 and 128 ...
    assert all(now[n] != before[n] for n in superseded)  # ... from another learning rate
    assert all(now[n] == before[n] for n in now if n not in superseded)


def test_snapshots_are_kept_unless_phema_keep_says(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    every = train(cli, tiny_config, tmp_path / "all", "train.phema_every=16", "train.keep_checkpoints=1")
    assert len(list_snapshots(every)) == 16 and len(ckpt.list_checkpoints(every)) == 1
    kept = train(cli, tiny_config, tmp_path / "kept", "train.phema_every=16", "train.phema_keep=3")
    assert [(s.nimg, s.sigma_rel) for s in list_snapshots(kept)] == [(n, s) for n in (96, 112, 128) for s in (0.05, 0.10)]


def test_resume_rules_for_post_hoc_ema(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = train(cli, tiny_config, tmp_path / "run", "train.phema_every=32")
    code, text = run(cli, "train", "--resume", out, "--set", "train.total_images=192", "--set", "train.phema_sigma_rels=[0.05]")
    assert code == 2 and "train.phema_sigma_rels" in text and "cannot change" in text, text
    # the interval may change: snapshots carry their own image counts
    code, text = run(cli, "train", "--resume", out, "--set", "train.total_images=192", "--set", "train.phema_every=64")
    assert code == 0, text
    assert sorted({s.nimg for s in list_snapshots(out)}) == [32, 64, 96, 128, 192]
    # a run trained without it cannot start it mid-run
    off = train(cli, tiny_config, tmp_path / "off")
    code, text = run(cli, "train", "--resume", off, "--set", "train.total_images=192", "--set", "train.phema_every=32")
    assert code == 2 and "trained without post-hoc EMA" in text, text


@pytest.mark.parametrize("key", ["phema_every", "phema_keep"])
def test_negative_intervals_are_refused(cli: CliRunner, tiny_config: Path, tmp_path: Path, key: str) -> None:
    code, text = run(cli, "train", tiny_config, "--out", tmp_path / "r", "--set", f"train.{key}=-1")
    assert code == 2 and f"train.{key}" in text, text
