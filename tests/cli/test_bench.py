"""`fastgan bench` on a tiny config: the output contract, not the speed (speed is for benchmarks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fastgan.cli import app


def test_bench_writes_json_markdown_and_plot(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    args = ["bench", str(tiny_config), "--steps", "1", "--windows", "2", "--warmup", "1", "--ladder", "eager,tensor,cudagraphs,dali"]
    result = cli.invoke(app, [*args, "--out", str(out), "--set", "data.num_workers=0"])
    assert result.exit_code == 0, result.output
    data = json.loads((out / "bench.json").read_text())
    assert {"device", "torch", "configs", "rungs", "flops_per_step"} <= set(data)
    rungs = {r["name"]: r for r in data["rungs"]}
    assert list(rungs) == ["eager", "tensor", "cudagraphs", "dali"]
    for r in data["rungs"]:
        assert {"name", "images_per_s", "ms_per_step", "speedup", "mfu", "peak_mem_bytes", "skipped"} <= set(r)
    assert rungs["eager"]["speedup"] == 1.0 and rungs["eager"]["skipped"] is None
    assert rungs["tensor"]["images_per_s"] > 0 and rungs["tensor"]["ms_per_step"] > 0
    assert data["configs"]["eager"]["data"]["backend"] == "torchvision" and data["configs"]["tensor"]["data"]["backend"] == "tensor"
    assert "GPU" in rungs["cudagraphs"]["skipped"]  # this CPU: listed with the reason, not dropped
    assert "image files" in rungs["dali"]["skipped"]
    assert data["flops_per_step"] > 0
    assert (out / "bench.md").read_text().count("|") > 20 and (out / "bench.png").stat().st_size > 1000


def test_unknown_rung_is_a_usage_error(cli: CliRunner, tiny_config: Path) -> None:
    result = cli.invoke(app, ["bench", str(tiny_config), "--ladder", "eager,warp"])
    assert result.exit_code == 2 and "unknown rung 'warp'" in result.output


def test_a_failing_rung_is_recorded_and_the_ladder_goes_on(
    cli: CliRunner, tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fastgan.train.build as build

    real_build = build.build_trainer

    def build_or_fail(cfg, *args, **kwargs):  # type: ignore[no-untyped-def]
        if cfg.train.channels_last:
            raise RuntimeError("accessing tensor output of CUDAGraphs that has been overwritten\nsecond line")
        return real_build(cfg, *args, **kwargs)

    monkeypatch.setattr(build, "build_trainer", build_or_fail)
    out = tmp_path / "bench"
    args = ["bench", str(tiny_config), "--steps", "1", "--windows", "1", "--warmup", "1", "--ladder", "eager,tensor,channels_last,fp16"]
    result = cli.invoke(app, [*args, "--out", str(out), "--set", "data.num_workers=0"])
    assert result.exit_code == 0, result.output
    rungs = {r["name"]: r for r in json.loads((out / "bench.json").read_text())["rungs"]}
    assert rungs["channels_last"]["error"] == "RuntimeError: accessing tensor output of CUDAGraphs that has been overwritten"
    assert rungs["channels_last"]["images_per_s"] is None
    assert rungs["fp16"]["images_per_s"] > 0  # the rung after the failure still ran
    for name in ("eager", "tensor", "fp16"):  # launches are counted for every rung that ran
        assert rungs[name]["launches_per_step"] > rungs[name]["launches_outside_models"] > 0
    assert "FAILED" in (out / "bench.md").read_text()


def test_rungs_are_time_boxed_and_a_hopeless_rung_stops_early(tiny_config: Path) -> None:
    from fastgan.bench.measure import measure
    from fastgan.config import load_config
    from fastgan.data.sources import open_source
    from fastgan.train.build import build_trainer
    from fastgan.train.setup import make_accelerator

    cfg = load_config(tiny_config, [])
    acc = make_accelerator(cfg)
    source = open_source(cfg.data, cfg.model.channels, cfg.model.resolution)
    boxed = measure(build_trainer(cfg, acc, source), warmup_steps=3, window_steps=50, windows=5, budget_s=1e-3)
    assert boxed.steps_measured == 1 and "budget reached in warm-up after 1 step" in boxed.note
    assert "time box" in boxed.note and boxed.images_per_s is not None and boxed.images_per_s > 0
    hopeless = measure(build_trainer(cfg, acc, source), warmup_steps=1, window_steps=2, windows=5, budget_s=60, best_rate=1e12)
    assert hopeless.steps_measured == 2 and "stopped after its first window" in hopeless.note


def test_mfu_divides_by_every_process_device_and_tf32_decides_the_fp32_peak(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import fastgan.bench.peaks as peaks
    from fastgan.bench.measure import RungResult
    from fastgan.bench.peaks import mfu
    from fastgan.config import load_config
    from fastgan.train.setup import set_tf32

    cfg = load_config(None, ["train.batch_size=100"])
    monkeypatch.setattr(peaks, "peak_flops", lambda device, precision, tf32=True: 1e12)
    result = RungResult("x", images_per_s=100.0)  # one step per second
    assert mfu(10**12, result, cfg, torch.device("cpu"), processes=1) == pytest.approx(1.0)
    assert mfu(10**12, result, cfg, torch.device("cpu"), processes=2) == pytest.approx(0.5)
    assert peaks.math_mode("no", tf32=True) == "tf32" and peaks.math_mode("no", tf32=False) == "fp32"
    assert peaks.PEAKS[("H100", "fp32")] < peaks.PEAKS[("H100", "tf32")] < peaks.PEAKS[("H100", "bf16")]
    for enabled in (False, True):
        set_tf32(enabled)
        assert torch.backends.cuda.matmul.allow_tf32 is enabled and torch.backends.cudnn.allow_tf32 is enabled


def test_bench_json_records_the_cpu_flags(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    result = cli.invoke(
        app, ["bench", str(tiny_config), "--steps", "1", "--windows", "1", "--warmup", "1", "--ladder", "tensor", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads((out / "bench.json").read_text())
    assert data["cpu"]["flags"] and "bf16_units" in data["cpu"] and data["tf32"] is True


def test_mfu_under_auto_precision_uses_the_peak_of_the_precision_it_resolves_to(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import fastgan.bench.peaks as peaks
    import fastgan.hardware as hardware
    from fastgan.bench.measure import RungResult
    from fastgan.config import load_config

    monkeypatch.setattr(peaks.torch.cuda, "get_device_name", lambda device=None: "NVIDIA H200")
    monkeypatch.setattr(hardware, "has_bf16_units", lambda device: True)  # a GPU that computes in bf16
    gpu, result = torch.device("cuda", 0), RungResult("x", images_per_s=100.0)  # one step per second
    auto = load_config(None, ["train.batch_size=100", "train.precision=auto"])
    assert peaks.mfu(790 * 10**12, result, auto, gpu, processes=1) == pytest.approx(1.0)  # bf16's peak, not TF32's
    fp32 = load_config(None, ["train.batch_size=100", "train.precision=no"])
    assert peaks.mfu(395 * 10**12, result, fp32, gpu, processes=1) == pytest.approx(1.0)
    monkeypatch.setattr(hardware, "has_bf16_units", lambda device: False)  # auto resolves to fp32 (TF32 on)
    assert peaks.mfu(395 * 10**12, result, auto, gpu, processes=1) == pytest.approx(1.0)


def test_flops_include_the_lazy_pass_per_reg_every_and_windows_start_after_it(tiny_config: Path) -> None:
    from fastgan.bench.measure import count_flops, measure
    from fastgan.config import load_config
    from fastgan.data.sources import open_source
    from fastgan.train.build import build_trainer
    from fastgan.train.lazy_reg import LazyRegularizer
    from fastgan.train.setup import make_accelerator

    rpgan = ["loss.name=rpgan", "loss.r1_gamma=1.0", "loss.r2_gamma=1.0"]
    counts = {}
    for every in (2, 4):
        cfg = load_config(tiny_config, [*rpgan, f"loss.reg_every={every}"])
        acc = make_accelerator(cfg)
        source = open_source(cfg.data, cfg.model.channels, cfg.model.resolution)
        counts[every] = count_flops(cfg, acc, source)
    two, four = counts[2], counts[4]
    assert two.plain_step == four.plain_step and two.lazy_pass == four.lazy_pass > two.plain_step / 4
    assert two.per_step == two.plain_step + two.lazy_pass // 2 and four.per_step == four.plain_step + four.lazy_pass // 4
    none = count_flops(load_config(tiny_config, []), acc, source)
    assert none.lazy_pass == 0 and none.per_step == none.plain_step

    trainer = build_trainer(load_config(tiny_config, [*rpgan, "loss.reg_every=4"]), acc, source)
    reg = trainer.step.regularize
    assert isinstance(reg, LazyRegularizer)
    due_at: list[int] = []

    def spy(cur_nimg: int, batch: Any) -> None:
        if reg.due(cur_nimg):
            due_at.append(cur_nimg // 16)  # as D steps
        reg(cur_nimg, batch)

    trainer.step.regularize = spy
    result = measure(trainer, warmup_steps=1, window_steps=3, windows=2, budget_s=600)
    assert "warm-up of 4 steps: through the first lazy R1/R2 step" in result.note
    assert "windows of 4 steps: whole R1/R2 periods" in result.note and result.steps_measured == 8
    # the last warm-up step is the first lazy one; step 5 counts launches; each window of 4 holds one
    assert due_at == [4, 8, 12]
