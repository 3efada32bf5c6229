"""`fastgan bench` on a tiny config: the output contract, not the speed (speed is for benchmarks)."""

from __future__ import annotations

import json
from pathlib import Path

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
