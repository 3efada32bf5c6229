"""`fastgan ema RUN --sigma-rel S`: G_ema rebuilt for any sigma_rel from a run's post-hoc EMA
snapshots (fastgan.run.posthoc_ema), written as a generator.safetensors with its config.toml; and
`fastgan eval RUN --sigma-rel LIST`, which scores each and names the best.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from fastgan import files
from fastgan.commands.eval import results_table
from fastgan.errors import UsageError
from fastgan.progress import Progress
from fastgan.sampling.walks import check_truncation


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_export_out(out: Path) -> None:
    """--out FILE.safetensors, not over a run's own generator (its config.toml is written beside it)."""
    if out.suffix != ".safetensors":
        raise UsageError(f"--out {out}: give a .safetensors file, e.g. --out ema-0.07/generator.safetensors (config.toml goes beside it)")
    files.check_file_out(out, "--out", "generator.safetensors")
    if (out.parent / ".fastgan-run").is_file() or (out.parent / "checkpoints").is_dir():
        raise UsageError(f"--out {out}: that is a run folder, whose config.toml and generator this would replace; choose another folder")


def run_ema(path: Path, sigma_rel: float, out: Path | None) -> Path:
    from fastgan.run.posthoc_ema import check_sigma_rel, default_export, export_generator, reconstruct_generator

    check_sigma_rel(sigma_rel)
    if out is not None:
        check_export_out(out)
    cfg, G, where, plan = reconstruct_generator(path, sigma_rel, device())
    dst = out if out is not None else default_export(path, sigma_rel)
    export_generator(G, cfg, dst, plan)
    print(f"fastgan: {plan.describe()}", file=sys.stderr)
    print(f"fastgan: wrote {dst} and its config.toml; sample it: fastgan sample {dst}", file=sys.stderr)
    return dst


def run_eval_posthoc(
    path: Path,
    sigma_rels_text: str,
    metrics: str,
    n: int,
    split: str,
    seed: int,
    truncation: float = 1.0,
    features: str = "fashion",
    weights: Path | None = None,
    weights_sha256: str | None = None,
) -> dict[str, Any]:
    """Each sigma_rel reconstructed and scored as `fastgan eval` scores a generator; the best by the
    first distance in --metrics (fd or kid), printed and written to eval-phema[-...].json."""
    from fastgan.commands.eval import DIRECTION, eval_file_name, parse_metrics
    from fastgan.metrics.evaluate import evaluate_generator, fits_feature_net, load_features
    from fastgan.run.posthoc_ema import parse_sigma_rels, reconstruct_generator, sigma_text, snapshot_run

    names = parse_metrics(metrics)  # before any slow work
    sigma_rels = parse_sigma_rels(sigma_rels_text)
    check_truncation(truncation)
    snapshot_run(path)  # a run without snapshots fails before the feature net loads
    dev = device()
    net, net_id = load_features(features, weights, weights_sha256, device=dev)
    results: dict[str, Any] = {}
    grey28 = True
    for sigma_rel in sigma_rels:
        cfg, G, _, plan = reconstruct_generator(path, sigma_rel, dev)
        print(f"fastgan: {plan.describe()}", file=sys.stderr)
        with Progress(f"eval s{sigma_text(sigma_rel)}", total=n, unit="img embedded") as progress:
            result = evaluate_generator(
                G, cfg, names, n=n, split=split, seed=seed, truncation=truncation, net=net, net_id=net_id, progress=progress
            )
        result["fit_error"] = plan.fit_error
        result["nimg"] = plan.nimg
        results[sigma_text(sigma_rel)] = result
        grey28 = fits_feature_net(cfg.model)
    key = next((m for m in names if m in ("fd", "kid")), None)  # as in-training eval picks its best checkpoint
    scored = {s: r["metrics"][key] for s, r in results.items()} if key is not None else {}
    if key is not None:
        pick = min if DIRECTION[key] == "lower" else max
        best: str | None = pick(scored, key=lambda s: scored[s])
    else:
        best = None
    # The best's own scores at the top level, in eval.json's form, so `fastgan report` lists them with the other evals.
    shown = results[best] if best is not None else next(iter(results.values()))
    summary = {
        **{k: shown[k] for k in ("metrics", "floor", "n", "truncation", "feature_net", "reference", "floor_set") if k in shown},
        "sigma_rel": float(best) if best is not None else None,
        "run": str(path.resolve()),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "best": {"sigma_rel": float(best), "metric": key, "value": scored[best]} if best is not None else None,
        "results": results,
    }
    out = path / eval_file_name(features, n, split, truncation).replace("eval", "eval-phema", 1)
    files.write_json(out, summary)
    Console(soft_wrap=False).print(sweep_table(results, best, grey28))
    if best is not None:
        print(f"fastgan: best sigma_rel = {best} ({key} {scored[best]:.4g}); export it: fastgan ema {path} --sigma-rel {best}")
    print(f"fastgan: wrote {out}", file=sys.stderr)
    return summary


def sweep_table(results: dict[str, Any], best: str | None, grey28: bool) -> Table:
    """One row per sigma_rel, the best marked; the floor and the features as `fastgan eval` shows them."""
    first = next(iter(results.values()))
    caption = results_table(first, grey28).caption
    floor = ", ".join(f"{k} {v:.4g}" for k, v in first["floor"].items() if k != "kid_std")
    title = f"fastgan eval: post-hoc EMA, {first['n']:,} generated vs {first['reference']} (floor: {floor})"
    table = Table(title=title, caption=caption, caption_justify="left")
    table.add_column("sigma_rel")
    keys = [k for k in next(iter(results.values()))["metrics"] if k != "kid_std"]
    for k in keys:
        table.add_column(k, justify="right")
    table.add_column("profile fit", justify="right")
    table.add_column("")
    for s, r in results.items():
        table.add_row(s, *(f"{r['metrics'][k]:.4g}" for k in keys), f"{100 * r['fit_error']:.2g}%", "best" if s == best else "")
    return table
