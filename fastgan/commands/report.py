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


def run_report(paths: list[Path], out: Path, sigma_rel: float | None = None) -> Path:
    if out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--out {out}: the report is one HTML page; give a file ending in .html")
    files.check_file_out(out, "--out", "report.html")
    from fastgan.report.runs import load_inputs

    runs, benches = load_inputs(paths)  # usage errors for bad paths come before the dependency check
    if sigma_rel is not None:
        from fastgan.run.posthoc_ema import check_sigma_rel, snapshot_run

        check_sigma_rel(sigma_rel)
        for run in runs:
            snapshot_run(run.path)  # every run must have snapshots, or one line says which has none
    require_matplotlib()
    from fastgan.report.page import render

    if sigma_rel is not None:
        for run in runs:
            run.posthoc = posthoc_grid(run.path, sigma_rel)

    text = render(runs, benches)
    out.parent.mkdir(parents=True, exist_ok=True)
    files.write_atomic(out, text)  # a browser refreshing it never sees half a page
    what = f"{len(runs)} run(s)" + (f" and {len(benches)} bench file(s)" if benches else "")
    print(f"fastgan: wrote the report on {what} to {out} ({len(text.encode()) / 2**20:.1f} MiB)", file=sys.stderr)
    return out


def posthoc_grid(run_dir: Path, sigma_rel: float) -> tuple[str, bytes]:
    """The run's G_ema rebuilt for `sigma_rel`, drawn on the latents of its latest.png (the run's
    train.num_samples and seed), as PNG bytes, and what was rebuilt."""
    import io

    import torch

    from fastgan.run.posthoc_ema import reconstruct_generator, sigma_text
    from fastgan.sampling.grid import display_grid, fixed_latents, generate_uint8, to_pil

    cpu = torch.device("cpu")
    cfg, G, _, plan = reconstruct_generator(run_dir, sigma_rel, cpu)
    t, m = cfg.train, cfg.model
    z, labels, row = fixed_latents(t.num_samples, m.z_dim, m.num_classes, m.conditional, t.seed, cpu, m.latent)
    buffer = io.BytesIO()
    to_pil(display_grid(generate_uint8(G, z, labels), row)).save(buffer, format="PNG")
    return f"post-hoc EMA, sigma_rel {sigma_text(sigma_rel)} at {plan.nimg:,} images", buffer.getvalue()
