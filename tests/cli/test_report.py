"""What a run leaves to look at: TensorBoard images, samples/timeline.gif, warnings.jsonl, and
`fastgan report` over one run, several runs and a bench.json. How the timeline picks its frames is
in unit/test_timeline.py, what the warnings say in unit/test_failure_warnings.py."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fastgan.sampling.timeline import grid_files
from tests.support import REPO, run

SECTIONS = ('id="summary"', 'id="config"', 'id="curves"', 'id="samples"', 'id="warnings"')


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two tiny runs that differ in lr; the second warns at every log (warn_grad_norm = 0)."""
    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    np.save(root / "tiny.npy", rng.integers(0, 255, size=(128, 28, 28), dtype=np.uint8))
    config = root / "tiny.toml"
    config.write_text(
        f'[model]\nwidth = 4\n[data]\nsource = "npy:{root / "tiny.npy"}"\n'
        "[train]\nbatch_size = 16\ntotal_images = 128\nlog_every = 32\nsample_every = 32\ncheckpoint_every = 128\nnum_samples = 8\n"
    )
    cli = CliRunner()
    a, b = root / "a", root / "b"
    assert run(cli, "train", config, "--out", a)[0] == 0
    code, text = run(cli, "train", config, "--out", b, "--set", "optim.G.lr=1e-3", "--set", "train.warn_grad_norm=0.0")
    assert code == 0, text
    return a, b


def test_sample_grids_go_to_tensorboard(runs: tuple[Path, Path]) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(runs[0] / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert "samples" in events.Tags()["images"]
    images = events.Images("samples")
    assert [e.step for e in images] == [32, 64, 96, 128]  # at its images-seen step
    png = Image.open(runs[0] / "samples" / "latest.png")
    assert (images[-1].width, images[-1].height) == png.size  # the same grid as the PNG


def test_timeline_has_one_labelled_frame_per_grid(runs: tuple[Path, Path]) -> None:
    samples = runs[0] / "samples"
    gif = Image.open(samples / "timeline.gif")
    assert gif.n_frames == len(grid_files(samples)) == 4
    assert gif.info["loop"] == 0
    assert not list(samples.glob(".*tmp*"))  # written through a temporary file, renamed into place


def test_warnings_are_recorded_with_their_nimg(runs: tuple[Path, Path]) -> None:
    assert not (runs[0] / "warnings.jsonl").exists()
    rows = [json.loads(line) for line in (runs[1] / "warnings.jsonl").read_text().splitlines()]
    assert {r["nimg"] for r in rows} == {32, 64, 96, 128}
    assert any("gradient norm" in r["message"] for r in rows) and all("time_s" in r for r in rows)


def images_in(page: str) -> list[str]:
    return re.findall(r'<img[^>]*src="([^"]*)"', page)


def assert_self_contained(page: str) -> None:
    text = re.sub(r'"data:[^"]*"', '""', page)  # base64 may hold "//" by chance
    assert not re.search(r"https?:|//|url\(", text, re.I), "the page must load nothing from the network"
    assert all(src.startswith(("data:image/png;base64,", "data:image/gif;base64,")) for src in images_in(page))
    assert not re.search(r"<(script|link|iframe)", page, re.I)


def test_report_on_one_run(cli: CliRunner, runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "one.html"
    code, text = run(cli, "report", runs[0], "--out", out)
    assert code == 0, text
    page = out.read_text()
    assert_self_contained(page)
    assert all(s in page for s in SECTIONS) and 'id="bench"' not in page
    assert "Losses" in page and "Throughput" in page and "None recorded." in page
    gifs = [src for src in images_in(page) if src.startswith("data:image/gif")]
    assert len(gifs) == 1 and base64.b64decode(gifs[0].split(",", 1)[1]) == (runs[0] / "samples" / "timeline.gif").read_bytes()


def test_report_on_two_runs_and_a_bench(cli: CliRunner, runs: tuple[Path, Path], tmp_path: Path) -> None:
    bench = json.loads((REPO / "benchmarks" / "results" / "mnist-dcgan_cpu-epyc-2c_2026-11-23.json").read_text())
    bench["rungs"][0]["launches_per_step"] = 123  # a key this report has never heard of
    bench_path = tmp_path / "bench.json"
    bench_path.write_text(json.dumps(bench))
    out = tmp_path / "sub" / "two.html"
    code, text = run(cli, "report", *runs, bench_path, "--out", out)
    assert code == 0, text
    page = out.read_text()
    assert_self_contained(page)
    assert all(s in page for s in SECTIONS) and 'id="bench"' in page
    diff = page.split("<h3>Differences</h3>", 1)[1].split("</table>", 1)[0]
    assert "optim.G.lr" in diff and "train.warn_grad_norm" in diff and "train.batch_size" not in diff
    assert 'class="differs"' in diff
    assert "launches_per_step" in page and "eager" in page
    assert page.count("data:image/gif") == 2  # a timeline per run
    warnings = page.split('id="warnings"', 1)[1]
    assert "gradient norm" in warnings


def test_report_reads_runs_written_before_time_s_and_warnings_existed(cli: CliRunner, runs: tuple[Path, Path], tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(runs[0], old)
    rows = [json.loads(line) for line in (old / "metrics.jsonl").read_text().splitlines()]
    (old / "metrics.jsonl").write_text(
        "".join(json.dumps({k: v for k, v in r.items() if k != "time_s"}) + "\n" for r in rows) + '{"nimg": 1'
    )
    (old / "samples" / "timeline.gif").unlink()  # rebuilt from the grids
    code, text = run(cli, "report", old, "--out", tmp_path / "r.html")
    assert code == 0, text
    page = (tmp_path / "r.html").read_text()
    assert "data:image/gif" in page and f"line {len(rows) + 1} is not JSON" in page


def test_training_seconds_continue_across_sessions() -> None:
    from fastgan.report.runs import training_seconds

    rows = [
        {"nimg": 10, "time_s": 5.0},
        {"nimg": 20, "time_s": 9.0},
        {"nimg": 20, "fd": 3.0},
        {"nimg": 15, "time_s": 1.0},
        {"nimg": 25, "time_s": 2.0},
    ]
    out = training_seconds(rows)
    assert [r["nimg"] for r in out] == [10, 15, 25]  # the resumed session rewrote nimg 20
    assert [r["train_s"] for r in out] == [5.0, 10.0, 11.0]


def test_report_usage_errors(cli: CliRunner, runs: tuple[Path, Path], tmp_path: Path) -> None:
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "bad.json").write_text('{"rungs": 3}')
    cases = [
        ([not_a_run], "not a run folder"),
        ([tmp_path / "missing"], "no such file or folder"),
        ([tmp_path / "notes.txt"], "neither a run folder nor a bench .json"),
        ([runs[0], tmp_path / "bad.json"], "not a bench.json"),
        ([tmp_path / "bad.json"], "not a bench.json"),
    ]
    for paths, message in cases:
        code, text = run(cli, "report", *paths, "--out", tmp_path / "r.html")
        assert code == 2 and message in text and "Traceback" not in text, (paths, text)
    code, text = run(cli, "report", runs[0], "--out", tmp_path / "r.pdf")
    assert code == 2 and "ending in .html" in text
    assert not (tmp_path / "r.html").exists()


def test_report_without_matplotlib_says_how_to_install_it(
    cli: CliRunner, runs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    code, text = run(cli, "report", runs[0], "--out", tmp_path / "r.html")
    assert code == 2 and "pip install 'fastgan[report]'" in text and "Traceback" not in text
    assert len(text.strip().splitlines()) == 1


def test_sample_diversity_rides_the_log_rows_into_metrics_jsonl_and_the_report(
    cli: CliRunner, runs: tuple[Path, Path], tmp_path: Path
) -> None:
    rows = [json.loads(line) for line in (runs[0] / "metrics.jsonl").read_text().splitlines()]
    assert [row["nimg"] for row in rows] == [32, 64, 96, 128]  # still one row per log interval
    spreads = [row.get("sample_diversity") for row in rows]
    # The grid at 32 images is measured after the log row at 32: it rides the next row; the final
    # grid's value has no row after it.
    assert spreads[0] is None and all(s is not None and s > 0 for s in spreads[1:]), spreads
    out = tmp_path / "one.html"
    assert run(cli, "report", runs[0], "--out", out)[0] == 0
    assert "Fixed-z sample diversity" in out.read_text()


def test_figures_label_their_units_keep_legends_off_the_data_and_group_the_lazy_step(monkeypatch: pytest.MonkeyPatch) -> None:
    from fastgan.report import plots
    from fastgan.report.runs import Run

    rows = [
        {
            "nimg": 64 * i,
            "train_s": float(i),
            "loss_D": 1.0 / (i + 1),
            "loss_G": 2.0,
            "penalty_reg": 0.1 * i + 0.1,
            "gnorm_reg": 3.0,
            "gnorm_reg_max": 4.0,
        }
        for i in range(40)
    ]
    runs = [
        Run(name=name, path=Path(name), config={}, rows=rows, warnings=[], evals=[], notes=[], timeline=None, latest_png=None)
        for name in "ab"
    ]
    groups, _ = plots.groups_for(runs)
    assert [g.keys for g in groups if "penalty_reg" in g.keys] == [("penalty_reg", "gnorm_reg", "gnorm_reg_max")]
    figures = []
    monkeypatch.setattr(plots, "_png", lambda fig: figures.append(fig) or b"")
    for group in groups:
        plots.curve_figure(group, runs)
    for fig, group in zip(figures, groups, strict=True):
        assert fig.axes[0].get_ylabel() == group.unit != ""
        assert fig.legends and all(ax.get_legend() is None for ax in fig.axes)  # one legend, outside the panels
        lines = fig.axes[0].get_lines()
        looks = {(line.get_linestyle(), line.get_marker()) for line in lines}
        assert len(looks) == len(lines)  # every series differs by more than its colour


def test_report_fits_a_phone(cli: CliRunner, runs: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "two.html"
    assert run(cli, "report", *runs, "--out", out)[0] == 0
    page = out.read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    tables = page.count("<table>")
    assert tables > 0 and page.count('<div class="scroll"><table>') == tables  # each table scrolls sideways in its box
    chromium = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    if chromium is None:
        pytest.skip("no Chromium here: the layout check needs a browser (apt-get install chromium)")
    probe = tmp_path / "probe.html"  # the page plus a script that names every element wider than the window
    script = (
        "<script>addEventListener('load',()=>{const w=document.documentElement.clientWidth;"
        "const wide=[...document.querySelectorAll('body *')].filter(e=>e.getBoundingClientRect().right>w+1"
        "&&!e.closest('.scroll')).map(e=>e.tagName);document.body.setAttribute('data-wide',wide.join(' ')||'none');"
        "document.body.setAttribute('data-page',document.documentElement.scrollWidth+'/'+w)})</script>"
    )
    probe.write_text(page.replace("</body>", script + "</body>"))
    argv = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=390,2000", "--virtual-time-budget=3000", "--dump-dom"]
    dom = subprocess.run([*argv, probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    wide = re.search(r'data-wide="([^"]*)"', dom)
    assert wide is not None, dom[-2000:]
    assert wide.group(1) == "none", f"wider than a 390 px window: {wide.group(1)}"
    width, window = re.search(r'data-page="(\d+)/(\d+)"', dom).groups()  # type: ignore[union-attr]
    assert int(width) <= int(window)
