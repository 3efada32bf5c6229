"""`fastgan report RUN [RUN ...] [bench.json ...] --out report.html`: one page to compare runs."""

from __future__ import annotations

import sys
from pathlib import Path

from fastgan import files
from fastgan.errors import UsageError


def require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError("fastgan report draws its curves with matplotlib, which is not installed: pip install 'fastgan[report]'") from None


def run_report(paths: list[Path], out: Path) -> Path:
    if out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--out {out}: the report is one HTML page; give a file ending in .html")
    files.check_file_out(out, "--out", "report.html")
    from fastgan.report.runs import load_inputs

    runs, benches = load_inputs(paths)  # usage errors for bad paths come before the dependency check
    require_matplotlib()
    from fastgan.report.page import render

    text = render(runs, benches)
    out.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(out, text)  # a browser refreshing it never sees half a page
    what = f"{len(runs)} run(s)" + (f" and {len(benches)} bench file(s)" if benches else "")
    print(f"fastgan: wrote the report on {what} to {out} ({len(text.encode()) / 2**20:.1f} MiB)", file=sys.stderr)
    return out
