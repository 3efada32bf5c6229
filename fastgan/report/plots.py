"""The report's figures as PNG bytes: one figure per group of metrics, with two panels (against
images seen, against training seconds); every run on the same axes, so recipes compare directly.

matplotlib is imported here only; `fastgan.commands.report` checks it is installed first.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from typing import Any

from fastgan.report.runs import Run

# Row keys that are not curves: axes, a spread drawn as KID's band, and running totals.
NOT_CURVES = {"nimg", "time_s", "train_s", "kid_std", "skipped_D_total", "skipped_G_total"}
LABELS = {"D_real": "D(x)", "D_gen": "D(G(z))", "images_per_s": "images/s"}
# Series are told apart without colour too: a line style per key, a marker per run.
STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "x")
MARKS_PER_CURVE = 12  # markers along a dense curve, so it stays readable


@dataclass(frozen=True)
class Group:
    title: str
    keys: tuple[str, ...]
    unit: str  # the y axis's label
    log_y: bool = False


# In page order. Keys a run writes that no group names get a figure each, after these.
GROUPS = (
    Group("Losses", ("loss_D", "loss_G", "penalty_D"), "loss (per image)"),
    Group("D outputs: D(x) on real images, D(G(z)) on generated ones", ("D_real", "D_gen"), "sigmoid(logit), 0 to 1"),
    Group(
        "Gradient norms (interval mean; _max: the interval's largest step)",
        ("gnorm_D", "gnorm_G", "gnorm_D_max", "gnorm_G_max"),
        "L2 norm (log scale)",
        True,
    ),
    Group("Lazy R1/R2 step: its penalty and D's gradient norm", ("penalty_reg", "gnorm_reg", "gnorm_reg_max"), "value (log)", True),
    Group("Throughput", ("images_per_s",), "images / s"),
    Group("Fréchet distance, in-training eval (lower is better)", ("fd",), "FD (feature units)"),
    Group("KID, in-training eval (lower is better; band: ± std over subsets)", ("kid",), "KID (unbiased MMD²)"),
    Group("Precision and recall, in-training eval (higher is better)", ("precision", "recall"), "fraction, 0 to 1"),
    Group("Fixed-z sample diversity (a fall from its best: mode collapse)", ("sample_diversity",), "per-pixel std, 0 to 255"),
    Group(
        "Augmentation probability (ADA's or the schedule's; _cap: a schedule's ceiling on ADA)", ("augment_p", "augment_p_cap"), "p, 0 to 1"
    ),
    Group("Scheduled learning rates ([schedule])", ("lr_G", "lr_D"), "lr (log scale)", True),
    Group("Scheduled Adam beta2 ([schedule])", ("beta2_G", "beta2_D"), "beta2"),
    Group("Scheduled R1/R2 weights ([schedule])", ("r1_gamma", "r2_gamma"), "gamma (log scale)", True),
    Group("Scheduled G_ema half-life ([schedule])", ("ema_halflife_images",), "images"),
    Group("Steps skipped for inf/NaN gradients, per interval", ("skipped_D", "skipped_G", "skipped_reg"), "steps"),
)


def numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def groups_for(runs: list[Run]) -> tuple[list[Group], list[str]]:
    """The groups with something to show, and the keys left out because they were always 0."""
    present: dict[str, bool] = {}  # key -> some run has a nonzero value
    for run in runs:
        for row in run.rows:
            for key, value in row.items():
                if key not in NOT_CURVES and numeric(value):
                    present[key] = present.get(key, False) or value != 0
    named = {k for g in GROUPS for k in g.keys}
    extra = [Group(key, (key,), LABELS.get(key, key)) for key in present if key not in named]
    shown = []
    for g in (*GROUPS, *extra):
        keys = tuple(k for k in g.keys if present.get(k))
        if keys:
            shown.append(Group(g.title, keys, g.unit, g.log_y))
    return shown, [k for k, nonzero in present.items() if not nonzero]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display: draw into memory
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})  # no URL hidden in the file
    _pyplot().close(fig)
    return buf.getvalue()


def curve_figure(group: Group, runs: list[Run]) -> bytes:
    plt = _pyplot()
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    # constrained layout makes room for the legend outside both panels, below them
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), sharey=True, layout="constrained")
    for r, run in enumerate(runs):
        for k, key in enumerate(group.keys):
            rows = [row for row in run.rows if numeric(row.get(key))]
            if not rows:
                continue
            color = colors[(r if len(runs) > 1 else k) % len(colors)]  # several runs: a colour per run
            label = LABELS.get(key, key) if len(runs) == 1 else f"{run.name}: {LABELS.get(key, key)}"
            every = max(1, len(rows) // MARKS_PER_CURVE)  # sparse (eval) curves show every point
            for ax, x_key in zip(axes, ("nimg", "train_s"), strict=True):
                xs, ys = [row[x_key] for row in rows], [row[key] for row in rows]
                ax.plot(
                    xs, ys, STYLES[k % len(STYLES)], color=color, label=label if ax is axes[0] else None,
                    marker=MARKERS[r % len(MARKERS)], markevery=every, markersize=4, linewidth=1.2,
                )  # fmt: skip
                if key == "kid" and all(numeric(row.get("kid_std")) for row in rows):
                    std = [row["kid_std"] for row in rows]
                    ax.fill_between(
                        xs,
                        [y - s for y, s in zip(ys, std, strict=True)],
                        [y + s for y, s in zip(ys, std, strict=True)],
                        color=color,
                        alpha=0.15,
                    )
    axes[0].set_xlabel("images seen")
    axes[1].set_xlabel("training seconds (wall clock)")
    axes[0].set_ylabel(group.unit)
    for ax in axes:
        ax.grid(alpha=0.3)
        if group.log_y:
            ax.set_yscale("log")
    fig.legend(fontsize=8, loc="outside lower center", ncols=min(4, max(1, len(axes[0].get_lines()))), frameon=False)
    fig.suptitle(group.title, fontsize=10)
    return _png(fig)


def bench_figure(rungs: list[dict[str, Any]], title: str) -> bytes | None:
    """images/s per rung that ran, as bars; None when no rung has a number to show."""
    ran = [r for r in rungs if numeric(r.get("images_per_s"))]
    if not ran:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.1 * len(ran) + 2.5, 3.4))
    ax.bar([str(r.get("name", i)) for i, r in enumerate(ran)], [r["images_per_s"] for r in ran], color="#4477aa")
    ax.set_ylabel("images / s")
    ax.set_title(title, fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)
