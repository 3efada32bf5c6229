"""The GPU check's report: the environment it ran in, junit parsing, and summary.md (see
scripts/gpu_check.py). Plain data in, markdown out; nothing here imports torch at module level."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def environment() -> dict[str, Any]:
    env: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "python": platform.python_version(), "host": platform.node()}
    try:
        import torch

        env["torch"] = torch.__version__
        env["cuda"] = torch.version.cuda
        env["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
        env["device_count"] = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception as e:  # noqa: BLE001
        env["torch"] = f"unavailable ({e})"
    import importlib.metadata

    for pkg in ("accelerate", "triton", "torchvision", "matplotlib", "nvidia-dali-cuda130"):
        try:
            env[pkg] = importlib.metadata.version(pkg)
        except Exception:  # noqa: BLE001
            env[pkg] = "not installed"
    try:
        sys.path.insert(0, str(REPO))
        from fastgan.hardware import cpu_info

        env["cpu"] = {k: v for k, v in cpu_info().items() if k != "flags"}
    except Exception as e:  # noqa: BLE001
        env["cpu"] = str(e)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True)
    env["commit"] = (commit.stdout.strip() or "unknown (not a git checkout)") + (" + uncommitted changes" if dirty.stdout.strip() else "")
    return env


def read_junit(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return []
    cases = []
    for case in root.iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                outcome, message = "failed", (child.get("message") or "")[:300]
            elif child.tag == "skipped":
                outcome, message = "skipped", (child.get("message") or "")[:200]
        cases.append({"name": case.get("name", ""), "seconds": float(case.get("time", 0)), "outcome": outcome, "message": message})
    return cases


def eval_summary(ev: dict[str, Any] | None) -> str:
    if not ev:
        return ""
    metrics = ev.get("metrics", ev)
    shown = [f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)) and k in ("fd", "kid", "precision", "recall")]
    return ", ".join(shown)


def _rate(v: Any) -> str:
    return f"{v:,.0f}" if isinstance(v, (int, float)) else ""


def cell_rows(label: str, data: dict[str, Any]) -> list[str]:
    rows = []
    for r in data.get("rungs", []):
        if r.get("skipped") or r.get("error"):
            why = r.get("skipped") or f"FAILED: {r.get('error')}"
            rows.append(f"| {label} | {r['name']} | {'skipped' if r.get('skipped') else 'failed'} | | | | | | {why} |")
            continue
        mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else ""
        mem = f"{r['peak_mem_bytes'] / 2**30:.2f} GiB" if r.get("peak_mem_bytes") else ""
        rows.append(
            f"| {label} | {r['name']} | {_rate(r['images_per_s'])} | {r.get('speedup') or 0:.2f}x | {mfu} | "
            f"{r.get('launches_per_step')} | {mem} | {r.get('warmup_s') or 0:.1f} s | {r.get('note', '')} |"
        )
    return rows


def headline_lines(details: dict[str, Any]) -> list[str]:
    h = details.get("headline")
    if not h or not h.get("ratio"):
        why = (h or {}).get("why") or "the headline stage did not finish"
        return [f"**Headline** (fastgan's fastest against the seeds' loop, tutorial-dcgan, batch 128): not measured: {why}."]
    lines = [
        f"**Headline**: on {details['environment'].get('device')}, tutorial-dcgan at batch {h['batch']}, fastgan's fastest cell "
        f"({h['best_cell']}) trains **{_rate(h['fastgan_images_per_s'])} images/s** against the seeds' loop's "
        f"{_rate(h['tutorial_images_per_s'])} (`benchmarks/tutorial_loop.py --model dcgan`): **{h['ratio']:.1f}x**."
    ]
    at = h.get("at_best_batch")
    if at and at.get("fastgan_images_per_s"):
        versus = (
            f"the seeds' loop at that batch {_rate(at['tutorial_images_per_s'])} ({at['ratio']:.1f}x)"
            if at.get("tutorial_images_per_s")
            else "the seeds' loop was not run at that batch"
        )
        lines.append(
            f"At fastgan's fastest batch ({at['batch']}): {_rate(at['fastgan_images_per_s'])} images/s, "
            f"{at['fastgan_images_per_s'] / h['tutorial_images_per_s']:.1f}x the seeds' loop at {h['batch']}; {versus}."
        )
    return lines


def summary_markdown(check: Any) -> str:
    env, details = check.details["environment"], check.details
    lines = [f"# fastgan GPU check ({details['mode']} mode)", "", *headline_lines(details), ""]
    lines += [
        f"- device: {env.get('device')}; torch {env.get('torch')} (CUDA {env.get('cuda')}); accelerate {env.get('accelerate')}; "
        f"triton {env.get('triton')}; torchvision {env.get('torchvision')}; python {env.get('python')}",
        f"- cpu: {env.get('cpu')}",
        f"- date: {env.get('date')}; commit {env.get('commit')}; budget {check.budget_s:.0f} s "
        f"(stages: {' + '.join(f'{s.budget_s:.0f}' for s in check.plan)}), elapsed {time.monotonic() - check.start:.0f} s",
        "",
        "## Checks",
        "",
        "| check | result | time | budget | notes |",
        "|---|---|---|---|---|",
    ]
    done = {s.name: s for s in check.stages}
    for planned in check.plan:
        s = done.get(planned.name, planned)
        lines.append(f"| {s.name} | {s.status} | {s.seconds:.0f} s | {s.given_s:.0f} s | {'; '.join(s.notes)} |")
    lines += ["", "## Not proven here", ""]
    lines += [f"- {line}" for line in details.get("not_proven_here", [])]
    if check.bench:
        lines += [
            "",
            "## Bench cells",
            "",
            "| bench | cell | images/s | speed-up | MFU | launches/step | peak memory | warm-up | note |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for label, data in check.bench.items():
            lines += cell_rows(label, data)
        lines += [""] + [f"- fastest in {label}: {data.get('best') or 'none ran'}" for label, data in check.bench.items()]
    for key, title in (("pytest_recipe", "pytest: today's recipe on CUDA"), ("pytest_older", "pytest -m gpu: the older tests")):
        cases = details.get(key, [])
        if cases:
            lines += ["", f"## {title}", "", "| test | outcome | time |", "|---|---|---|"]
            lines += [
                f"| {c['name']} | {c['outcome']}{': ' + c['message'] if c['message'] else ''} | {c['seconds']:.1f} s |" for c in cases
            ]
    records = details.get("gpu_test_records", [])
    if records:
        lines += ["", "## GPU test records", ""] + [f"- `{json.dumps(r, default=str)[:400]}`" for r in records]
    te = details.get("quickstart")
    if te:
        lines += ["", "## Quickstart recipe and eval", "", f"- {json.dumps(te, default=str)[:1500]}"]
    return "\n".join(lines) + "\n"
