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
    fastest = max(("eager", "tensor"), key=lambda n: rungs[n]["images_per_s"])
    assert data["best"] == fastest and f"would pick {fastest}: the fastest measured here" in result.output
    command = next(line for line in data["pick"] if "fastgan train" in line)  # the pick as the --set lines that give it
    assert ("--set data.backend=tensor" in command) == (fastest == "tensor") and "--set train.precision=no" in command
    assert 'train.precision = "auto" gives' in data["pick"][-1]


def test_the_pick_says_when_auto_would_not_train_with_the_fastest_precision(monkeypatch: pytest.MonkeyPatch, tiny_config: Path) -> None:
    import torch

    import fastgan.hardware as hardware
    from fastgan.bench.pick import effective_overrides, pick_lines
    from fastgan.config import load_config

    base = ("train.batch_size=16",)
    assert effective_overrides(base, (*base, "train.precision=no", "data.backend=tensor", "train.precision=bf16")) == [
        "data.backend=tensor", "train.precision=bf16",
    ]  # fmt: skip
    monkeypatch.setattr(hardware, "has_bf16_units", lambda device: False)
    cpu = torch.device("cpu")
    bf16_cfg, fp32_cfg = (load_config(tiny_config, [f"train.precision={p}"]) for p in ("bf16", "no"))
    bf16 = pick_lines(tiny_config, (), "bf16", ("train.precision=bf16",), 900.0, 450.0, bf16_cfg, cpu)
    assert bf16[0] == "bench: would pick bf16: the fastest measured here, 900 images/s, 2.00x the first; to train with it:"
    assert bf16[1] == f"  fastgan train {tiny_config} --set train.precision=bf16"
    assert "gives fp32 here" in bf16[2] and bf16[2].endswith("but bf16 measured fastest: set train.precision=bf16")
    fp32 = pick_lines(tiny_config, (), "tensor", ("train.precision=no",), 500.0, None, fp32_cfg, cpu)
    assert fp32[2].endswith("as measured fastest") and "but" not in fp32[2]


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


# ---------------------------------------------------------------------------- --grid and --batch lists


def fake_rungs(monkeypatch: pytest.MonkeyPatch, interrupt_at: str | None = None) -> list[str]:
    """Replace the measurement of one configuration (fastgan.bench.climb.run_rung) by a fake whose
    speed depends on the cell: bf16 + channels_last + compile "default" is fastest, fp32
    max-autotune with channels_last fails, and fp32 max-autotune contiguous hangs in "compile"."""
    import time

    import fastgan.bench.climb as climb
    from fastgan.bench.measure import RungResult

    calls: list[str] = []

    def run_rung(cfg, accelerator, source, steps, windows, warmup, budget_s, best_rate):  # type: ignore[no-untyped-def]
        t = cfg.train
        calls.append(f"{t.precision}/{t.compile}/{t.channels_last}")
        assert cfg.data.backend == "tensor"  # the grid runs on the device-resident dataset
        if interrupt_at == calls[-1]:
            raise KeyboardInterrupt
        if t.compile == "max-autotune" and t.precision == "no":
            if t.channels_last:
                return RungResult("", error="RuntimeError: autotuning found no kernel")
            time.sleep(10)  # the hard time box (2x --rung-seconds) interrupts this
        rate = 100.0 * (2 if t.precision == "bf16" else 1) * (1.5 if t.channels_last else 1) * (3 if t.compile == "default" else 1)
        return RungResult("", images_per_s=rate, images_per_s_spread=(rate, rate), ms_per_step=1.0, warmup_s=0.1,
                          launches_per_step=10, launches_outside_models=2, peak_mem_bytes=2**20)  # fmt: skip

    monkeypatch.setattr(climb, "run_rung", run_rung)
    return calls


def test_grid_measures_every_cell_records_failures_and_names_the_fastest(
    cli: CliRunner, tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_rungs(monkeypatch)
    out = tmp_path / "grid"
    result = cli.invoke(app, ["bench", str(tiny_config), "--grid", "--rung-seconds", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "fastest cell: bf16/default/channels_last, 900 images/s" in result.output
    data = json.loads((out / "grid.json").read_text())
    cells = {r["name"]: r for r in data["rungs"]}
    assert len(cells) == 16 and data["best"] == "bf16/default/channels_last" and data["partial"] is False
    assert data["rungs"][0]["name"] == "fp32/off/contiguous" and data["rungs"][0]["speedup"] == 1.0  # the baseline first
    assert calls[0] == "no/off/False" and calls[-1].startswith("no/max-autotune")  # max-autotune last
    for name, cell in cells.items():
        if "reduce-overhead" in name:
            assert cell["skipped"] == "CUDA graphs need a GPU"  # this CPU: listed with the reason
    assert cells["fp32/max-autotune/channels_last"]["error"] == "RuntimeError: autotuning found no kernel"
    assert "time box" in cells["fp32/max-autotune/contiguous"]["error"]  # interrupted, and the grid went on
    assert cells["bf16/default/channels_last"]["speedup"] == pytest.approx(9.0)
    assert data["flops"]["lazy_pass"] == 0 and data["flops_per_step"] > 0
    md = (out / "grid.md").read_text()
    assert "| precision / layout | off | default | reduce-overhead | max-autotune |" in md and "**bf16/default/channels_last**" in md
    assert (out / "grid.png").stat().st_size > 1000


def test_a_grid_under_a_budget_lists_what_it_did_not_run_and_sigint_keeps_what_it_measured(
    cli: CliRunner, tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fastgan.bench.sweep as sweep

    fake_rungs(monkeypatch, interrupt_at="bf16/default/True")
    out = tmp_path / "grid"
    result = cli.invoke(app, ["bench", str(tiny_config), "--grid", "--out", str(out)])
    assert result.exit_code == 130 and "interrupted" in result.output
    cells = {r["name"]: r for r in json.loads((out / "grid.json").read_text())["rungs"]}
    assert len(cells) == 16 and cells["bf16/off/channels_last"]["images_per_s"] == 300
    assert cells["bf16/default/channels_last"]["error"] == "interrupted (SIGINT) while it ran"
    assert cells["fp32/max-autotune/channels_last"]["skipped"] == "not run (interrupted)"

    fake_rungs(monkeypatch)
    monkeypatch.setattr(sweep.Sweep, "remaining", lambda self: 45.0 - 10.0 * len(self.results))  # each cell "takes" 10 s
    result = cli.invoke(app, ["bench", str(tiny_config), "--grid", "--budget", "45", "--out", str(out)])
    assert result.exit_code == 0, result.output
    cells = {r["name"]: r for r in json.loads((out / "grid.json").read_text())["rungs"]}
    assert cells["fp32/off/contiguous"]["images_per_s"] and len(cells) == 16
    assert cells["fp32/off/channels_last"]["skipped"].startswith("not run (budget)")


def test_cells_pick_part_of_the_grid_in_its_order(
    cli: CliRunner, tiny_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_rungs(monkeypatch)
    out = tmp_path / "grid"
    cells = "bf16/default/channels_last,fp32/off/contiguous"
    result = cli.invoke(app, ["bench", str(tiny_config), "--grid", "--cells", cells, "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = [r["name"] for r in json.loads((out / "grid.json").read_text())["rungs"]]
    assert names == ["fp32/off/contiguous", "bf16/default/channels_last"]


def test_batch_list_gives_a_table_and_a_plot_per_batch(cli: CliRunner, tiny_config: Path, tmp_path: Path) -> None:
    out = tmp_path / "batches"
    args = ["bench", str(tiny_config), "--batch", "8,16", "--steps", "1", "--windows", "1", "--warmup", "2", "--out", str(out)]
    result = cli.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "fastest batch:" in result.output
    data = json.loads((out / "batches.json").read_text())
    assert [r["name"] for r in data["rungs"]] == ["batch 8", "batch 16"] and data["batch_size"] == [8, 16]
    for r in data["rungs"]:
        assert r["images_per_s"] > 0 and r["launches_per_step"] > 0 and r["peak_mem_bytes"] > 0 and r["error"] is None
    assert data["configs"]["batch 16"]["train"]["batch_size"] == 16 and data["configs"]["batch 8"]["data"]["backend"] == "tensor"
    assert data["flops_per_image"] > 0
    md = (out / "batches.md").read_text()
    assert "| batch | images/s | ms/step | MFU | launches/step | peak mem MiB |" in md
    assert (out / "batches.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch", "12x"], "expected a batch size like 256"),
        (["--batch", "16,16"], "must be at least 1 and appear once"),
        (["--grid", "--ladder", "eager"], "--grid and --ladder: choose one"),
        (["--batch", "8,16", "--ladder", "eager"], "a batch list measures one configuration"),
        (["--grid", "--processes", "1,2"], "does not combine with --grid"),
        (["--grid", "--budget", "0"], "--budget 0: must be a positive number of seconds"),
        (["--batch", "8,16", "--budget", "nan"], "--budget nan: must be a positive number of seconds"),
        (["--cells", "bf16/off/channels_last"], "add --grid"),
        (["--grid", "--cells", "fp64/off/contiguous"], "unknown cell 'fp64/off/contiguous'"),
    ],
)
def test_bad_grid_and_batch_options_are_one_line_usage_errors(cli: CliRunner, tiny_config: Path, args: list[str], message: str) -> None:
    result = cli.invoke(app, ["bench", str(tiny_config), *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


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
