"""`fastgan eval`: FD, KID and precision/recall of a run's EMA generator against a real split,
beside the reference floor (the same metrics for real training images against that split).

Everything runs offline with the shipped Fashion-MNIST feature net (`fastgan.metrics.feature_net`);
the evaluation itself is fastgan.metrics.evaluate.evaluate_generator. This command writes eval.json
and prints the table.
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
from fastgan.errors import UsageError
from fastgan.progress import Progress
from fastgan.sampling.walks import check_truncation

DEFAULT_N = 10_000  # generated (and real) images of `fastgan eval` unless --n says otherwise
# Which way is better, for the table.
DIRECTION = {"fd": "lower", "kid": "lower", "precision": "higher", "recall": "higher"}
INCEPTION_NOTE = (
    "note: for Inception FID/KID (comparable with papers), download inception-2015-12-05.pt once from "
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt "
    "and run: fastgan eval RUN --features inception --weights PATH"
)


def eval_file_name(features: str, n: int, split: str, truncation: float) -> str:
    """One file per kind of evaluation, so that an eval with other features, another sample count,
    split or psi never replaces an earlier one: eval.json for the default kind (fashion features,
    10k samples, test split, psi 1), else eval-<what differs>.json, e.g. eval-inception-n50000.json."""
    parts = [
        features if features != "fashion" else "",
        f"n{n}" if n != DEFAULT_N else "",
        split if split != "test" else "",
        f"truncation-{truncation:g}" if truncation != 1.0 else "",
    ]
    return "-".join(["eval", *filter(None, parts)]) + ".json"


def parse_metrics(text: str) -> list[str]:
    """'fd, kid' -> ["fd", "kid"], or a UsageError naming the allowed metrics."""
    from fastgan.metrics import check_metric_names

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError("--metrics is empty; give a comma-separated list, e.g. --metrics fd,kid,pr")
    try:
        return check_metric_names(dict.fromkeys(names))  # dict: drop repeats, keep order
    except UsageError as e:
        raise UsageError(f"--metrics {text}: {e}") from None


def run_eval(
    path: Path,
    metrics: str,
    n: int,
    split: str,
    seed: int,
    truncation: float = 1.0,
    features: str = "fashion",
    weights: Path | None = None,
    weights_sha256: str | None = None,
) -> dict[str, Any]:
    names = parse_metrics(metrics)  # before any slow work
    check_truncation(truncation)
    from fastgan.metrics.evaluate import evaluate_generator, fits_feature_net, load_features
    from fastgan.run.generator import load_generator, run_folder_of

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    net, net_id = load_features(features, weights, weights_sha256, device)  # a bad --weights fails before the real sets load
    cfg, G, where = load_generator(path)
    with Progress("eval", total=n, unit="img embedded") as progress:
        G = G.to(device)
        result = evaluate_generator(
            G, cfg, names, n=n, split=split, seed=seed, truncation=truncation, net=net, net_id=net_id, progress=progress
        )
    result["checkpoint"] = str(Path(where).resolve())
    result["date"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    # A truncated eval goes beside the plain one, not over it: the pair shows what psi costs.
    out = run_folder_of(path) / eval_file_name(features, n, split, truncation)
    files.write_json(out, result)  # atomic, and strict: a NaN score is written as null

    grey28 = fits_feature_net(cfg.model)
    Console(soft_wrap=False).print(results_table(result, grey28))
    if not grey28 and features != "inception":
        print(INCEPTION_NOTE, file=sys.stderr)
    print(f"fastgan: evaluated {where}; wrote {out}", file=sys.stderr)
    return result


def results_table(result: dict[str, Any], grey28: bool) -> Table:
    scores, floor = result["metrics"], result["floor"]
    caption = f"Features: {result['feature_net']}, a 28x28 Fashion-MNIST CNN: not comparable to Inception FID; compare runs that share it."
    if result["feature_net"].startswith("inception"):
        caption = f"Features: {result['feature_net']}, the TorchScript Inception-v3 of StyleGAN2-ADA/clean-fid: FID comparable at equal N."
    elif not grey28:
        caption += " These images were converted to 28x28 grey (luma, resized) for it, so the numbers only rank runs on this data."
    psi = result.get("truncation", 1.0)
    title = f"fastgan eval: {result['n']:,} generated{f' (truncation {psi:g})' if psi != 1.0 else ''} vs {result['reference']}"
    table = Table(title=title, caption=caption, caption_justify="left")
    table.add_column("metric")
    table.add_column("generated", justify="right")
    table.add_column(f"floor: {result['floor_set']}", justify="right")
    table.add_column("better")
    for key, value in scores.items():
        if key == "kid_std":
            continue
        gen_text, floor_text = f"{value:.4g}", f"{floor[key]:.4g}"
        if key == "kid":  # the spread over subsets is its error bar
            gen_text += f" ± {scores['kid_std']:.2g}"
            floor_text += f" ± {floor['kid_std']:.2g}"
        table.add_row(key, gen_text, floor_text, DIRECTION.get(key, ""))
    return table
