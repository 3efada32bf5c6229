"""The report as one self-contained HTML page: inline CSS, images as base64 data URIs, no script,
nothing fetched from the network, so it can be mailed, attached to an issue or opened offline."""

from __future__ import annotations

import base64
import datetime
import html
import io
import json
import math
from typing import Any

from fastgan.report.plots import bench_figure, curve_figure, groups_for
from fastgan.report.runs import Bench, Run

MAX_WARNINGS = 100  # per run; the rest are counted, and stay in warnings.jsonl

# Readable on a phone: wide tables scroll inside their own box, images never exceed the width,
# and long names (paths, config keys) wrap instead of widening the page.
CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1300px; padding: 0 16px; color: #222; }
h1 { font-size: 22px; overflow-wrap: anywhere; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 4px; margin-top: 36px; }
h3 { font-size: 15px; overflow-wrap: anywhere; } p, figcaption, summary { overflow-wrap: anywhere; }
.scroll { overflow-x: auto; max-width: 100%; } table { border-collapse: collapse; margin: 8px 0; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.differs td { background: #fff3b0; } tr.differs td:first-child { font-weight: 600; }
code, td.mono { font-family: ui-monospace, monospace; font-size: 12.5px; }
.samples { display: flex; flex-wrap: wrap; gap: 24px; } figure { margin: 0; } figcaption { color: #555; font-size: 12.5px; }
.samples img { image-rendering: pixelated; max-width: 100%; height: auto; border: 1px solid #ddd; }
img.plot { max-width: 100%; height: auto; } .note { color: #666; } nav { display: flex; flex-wrap: wrap; gap: 4px 14px; }
@media (max-width: 700px) {
  /* a grid shrunk by a fraction would drop uneven pixel rows with nearest-neighbour: smooth it instead */
  .samples img { image-rendering: auto; } body { margin: 12px auto; padding: 0 10px; }
}
"""


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def img(data: bytes, mime: str, alt: str, cls: str = "", width: int | None = None) -> str:
    cls_attr = f' class="{cls}"' if cls else ""
    width_attr = f' width="{width}"' if width else ""
    return f'<img{cls_attr}{width_attr} alt="{html.escape(alt)}" src="{data_uri(data, mime)}">'


def fmt(value: Any) -> str:
    """A cell's text: floats to 4 significant figures, containers as JSON, None as blank."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"  # as TOML and JSON write it
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:,.0f}" if abs(value) >= 1e4 else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, list | tuple):
        # JSON for strings and whole numbers inside: "[256, 1024]", not "[256, 1,024]"
        return "[" + ", ".join(json.dumps(v) if isinstance(v, str | int) else fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {fmt(v)}" for k, v in value.items()) + "}"
    return str(value)


def cell(value: Any) -> str:
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return f'<td class="num">{html.escape(fmt(value))}</td>' if numeric else f"<td>{html.escape(fmt(value))}</td>"


def table(header: list[str], rows: list[list[Any]], row_classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(cell(v) for v in row) + "</tr>")
    return f'<div class="scroll"><table><tr>{head}</tr>{"".join(body)}</table></div>'


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{body}</section>'


def summary(runs: list[Run]) -> str:
    rows = []
    for run in runs:
        last = run.rows[-1] if run.rows else {}
        speeds = [r["images_per_s"] for r in run.rows if isinstance(r.get("images_per_s"), int | float)]
        fds = [r["fd"] for r in run.rows if isinstance(r.get("fd"), int | float)]
        rows.append(
            [
                run.name,
                str(run.path),
                last.get("nimg"),
                None if not last else round(last["train_s"], 1),
                speeds[-1] if speeds else None,
                min(fds) if fds else None,
                len(run.warnings),
            ]
        )
    header = ["run", "folder", "images seen", "training s", "last images/s", "best in-training FD", "warnings"]
    out = table(header, rows)
    # plain eval first, then stronger and stronger truncation
    evals = [(run.name, name, result) for run in runs for name, result in sorted(run.evals, key=lambda e: -e[1].get("truncation", 1.0))]
    if evals:
        keys = list(dict.fromkeys(k for _, _, result in evals for k in result.get("metrics", {})))
        eval_rows = [
            [run, name, result.get("truncation", 1.0), result.get("n"), *(result.get("metrics", {}).get(k) for k in keys)]
            for run, name, result in evals
        ]
        out += "<h3>fastgan eval results</h3>" + table(["run", "file", "truncation", "n", *keys], eval_rows)
        out += '<p class="note">Truncated evals (<code>--truncation</code> below 1) sit beside the plain one: compare their recall.</p>'
    notes = [f"{run.name}: {n}" for run in runs for n in run.notes]
    if notes:
        out += "".join(f'<p class="note">{html.escape(n)}</p>' for n in notes)
    return section("summary", "Runs", out)


def config_section(runs: list[Run]) -> str:
    keys = list(dict.fromkeys(k for run in runs for k in run.config))
    missing = object()

    def differs(key: str) -> bool:
        values = [json.dumps(run.config.get(key, missing), default=str) for run in runs]
        return len(set(values)) > 1

    names = [run.name for run in runs]
    rows = [[key, *(run.config.get(key) for run in runs)] for key in keys]
    if len(runs) == 1:
        full = table(["key", names[0]], rows)
        return section("config", "Resolved config", f"<details><summary>All {len(keys)} keys of config.toml</summary>{full}</details>")
    classes = ["differs" if differs(k) else "" for k in keys]
    diff_rows = [row for row, c in zip(rows, classes, strict=True) if c]
    out = "<h3>Differences</h3>"
    out += table(["key", *names], diff_rows, ["differs"] * len(diff_rows)) if diff_rows else "<p>None: the runs share one config.</p>"
    full = table(["key", *names], rows, classes)
    out += f"<details><summary>Full resolved config ({len(keys)} keys; differences highlighted)</summary>{full}</details>"
    return section("config", "Resolved config", out)


def curves_section(runs: list[Run]) -> str:
    groups, always_zero = groups_for(runs)
    if not groups:
        return section("curves", "Curves", "<p>No metrics rows to plot.</p>")
    out = "".join(f"<figure>{img(curve_figure(g, runs), 'image/png', g.title, 'plot')}</figure>" for g in groups)
    if always_zero:
        out += f'<p class="note">Always 0, not plotted: {html.escape(", ".join(always_zero))}.</p>'
    out += '<p class="note">Training seconds are wall-clock time summed over sessions (a resumed run continues its clock).</p>'
    return section("curves", "Curves", out)


def figure(data: bytes, mime: str, alt: str, caption: str, width: int | None = None) -> str:
    return f"<figure>{img(data, mime, alt, width=width)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def display_width(data: bytes, target: int = 520) -> int:
    """A whole multiple of the image's width near `target` px: the timeline's frames are native
    size (small), and whole multiples keep pixelated upscaling even."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return im.width * max(1, target // im.width)


def samples_section(runs: list[Run]) -> str:
    parts = []
    for run in runs:
        figs = []
        if run.timeline is not None:
            caption = "timeline: the fixed-z grids in order (samples/timeline.gif)"
            figs.append(figure(run.timeline, "image/gif", f"{run.name} timeline", caption, display_width(run.timeline)))
        if run.latest_png is not None:
            figs.append(figure(run.latest_png, "image/png", f"{run.name} latest", "latest grid"))
        if run.posthoc is not None:
            what, png = run.posthoc
            figs.append(figure(png, "image/png", f"{run.name} post-hoc EMA", f"{what}, on the latest grid's latents"))
        body = f'<div class="samples">{"".join(figs)}</div>' if figs else '<p class="note">No sample grids in samples/.</p>'
        parts.append(f"<h3>{html.escape(run.name)}</h3>{body}")
    return section("samples", "Samples", "".join(parts))


def warnings_section(runs: list[Run]) -> str:
    parts = []
    for run in runs:
        shown = run.warnings[:MAX_WARNINGS]
        if not shown:
            parts.append(f'<h3>{html.escape(run.name)}</h3><p class="note">None recorded.</p>')
            continue
        body = table(["images seen", "warning"], [[w.get("nimg"), w.get("message", "")] for w in shown])
        if len(run.warnings) > len(shown):
            body += f'<p class="note">… and {len(run.warnings) - len(shown)} more in warnings.jsonl.</p>'
        parts.append(f"<h3>{html.escape(run.name)} ({len(run.warnings)})</h3>{body}")
    return section("warnings", "Warnings", "".join(parts))


def bench_section(benches: list[Bench]) -> str:
    parts = []
    for bench in benches:
        title = " on ".join(str(bench.meta[k]) for k in ("config_name", "device") if k in bench.meta) or bench.path.name
        keys = list(dict.fromkeys(k for rung in bench.rungs for k in rung))  # new keys show up as new columns
        body = table(keys, [[rung.get(k) for k in keys] for rung in bench.rungs])
        figure = bench_figure(bench.rungs, title)
        if figure is not None:
            body += img(figure, "image/png", f"{title} images/s", "plot")
        meta = table(["key", "value"], [[k, v] for k, v in bench.meta.items()])
        body += f"<details><summary>Run details ({html.escape(str(bench.path))})</summary>{meta}</details>"
        parts.append(f"<h3>{html.escape(title)}</h3>{body}")
    return section("bench", "Benchmarks", "".join(parts))


def render(runs: list[Run], benches: list[Bench]) -> str:
    # the samples come right after the summary: they are what a person looks at first, and a
    # screenshot of the page's top shows them
    sections = [summary(runs), samples_section(runs), curves_section(runs), config_section(runs), warnings_section(runs)]
    links = [("summary", "Runs"), ("samples", "Samples"), ("curves", "Curves"), ("config", "Config"), ("warnings", "Warnings")]
    if benches:
        sections.append(bench_section(benches))
        links.append(("bench", "Benchmarks"))
    title = "fastgan report: " + ", ".join(run.name for run in runs)
    made = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in links)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>"
        f'<body><h1>{html.escape(title)}</h1><p class="note">Written {made} by <code>fastgan report</code>.</p><nav>{nav}</nav>'
        + "".join(sections)
        + "</body></html>\n"
    )
