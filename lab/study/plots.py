"""The activation study's figures, drawn from its JSON-ready result alone.

matplotlib is an optional dependency (the `study` extra): it is imported inside `write_plots`,
with the non-interactive Agg backend, so importing this module needs nothing beyond numpy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

DPI = 100  # the PNGs are committed next to docs/activation.md; keep them small

# One colour per model, the same in every figure.
COLOURS = {
    "relu": "#1f77b4",
    "leaky_relu": "#17becf",
    "prelu": "#9467bd",
    "overlap": "#d62728",
    "scikit-learn NMF (Frobenius)": "#7f7f7f",
    "scikit-learn LDA (batch)": "#bcbd22",
}


def _label(model: dict[str, Any]) -> str:
    return model.get("activation") or model["name"].replace("scikit-learn ", "")


def _colour(model: dict[str, Any]) -> str:
    return COLOURS.get(model.get("activation") or model["name"], "#2ca02c")


def write_plots(study: dict[str, Any], directory: Path) -> list[Path]:
    """Every figure as a PNG in `directory`; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, draw in (
        ("planted_noise.png", lambda: _planted(plt, study, "noise_rate", "noise-keyword rate")),
        (
            "planted_short.png",
            lambda: _planted(plt, study, "short_fraction", "share of short items"),
        ),
        ("planted_pruned.png", lambda: _planted_pruned(plt, study)),
        ("real.png", lambda: _real(plt, study)),
        ("tradeoff.png", lambda: _tradeoff(plt, study)),
        ("tradeoff_threshold.png", lambda: _threshold(plt, study)),
        ("learned_parameters.png", lambda: _parameters(plt, study)),
        ("surfaces.png", lambda: _surfaces(plt, study)),
        ("dead_topics.png", lambda: _dead(plt, study)),
        ("cost.png", lambda: _cost(plt, study)),
    ):
        fig = draw()
        if fig is None:
            continue
        path = directory / name
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def _planted(plt: Any, study: dict[str, Any], axis: str, label: str) -> Any:
    config = study["config"]
    fixed = "short_fraction" if axis == "noise_rate" else "noise_rate"
    fixed_value = config["base_short_fraction" if axis == "noise_rate" else "base_noise_rate"]
    cells = [c for c in study["planted"]["cells"] if np.isclose(c[fixed], fixed_value)]
    cells.sort(key=lambda c: c[axis])
    if len(cells) < 2:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4), sharey=True)
    for ax, metric, title in zip(
        axes,
        ("topic_precision", "topic_recall", "topic_f1"),
        ("precision", "recall", "F1"),
        strict=True,
    ):
        for model in cells[0]["models"]:
            rows = [next(m for m in c["models"] if m["name"] == model["name"]) for c in cells]
            ax.errorbar(
                [c[axis] for c in cells],
                [r[metric]["mean"] for r in rows],
                yerr=[r[metric]["std"] for r in rows],
                label=_label(model),
                color=_colour(model),
                marker="o",
                capsize=2,
            )
        ax.set_title(f"active-topic {title}")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(0, 1.02)
    axes[-1].legend(fontsize=8)
    fixed_label = "short share" if axis == "noise_rate" else "noise rate"
    fig.suptitle(f"Planted topics ({fixed_label} {fixed_value:.2f})", y=1.02)
    return fig


def _planted_pruned(plt: Any, study: dict[str, Any]) -> Any:
    """F1 against zeros for the base planted catalog: as trained (circles) and pruned."""
    config = study["config"]
    base = [
        c
        for c in study["planted"]["cells"]
        if np.isclose(c["noise_rate"], config["base_noise_rate"])
        and np.isclose(c["short_fraction"], config["base_short_fraction"])
    ]
    if not base or not base[0].get("pruned"):
        return None
    cell = base[0]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for model, pruned in zip(cell["models"], cell["pruned"], strict=True):
        xs = [model["zero_fraction"]["mean"]]
        ys = [model["topic_f1"]["mean"]]
        for level in sorted(pruned["levels"]):
            xs.append(pruned["levels"][level]["zero_fraction"]["mean"])
            ys.append(pruned["levels"][level]["topic_f1"]["mean"])
        ax.plot(xs, ys, marker="o", color=_colour(model), label=_label(model))
        ax.scatter(xs[:1], ys[:1], s=90, facecolors="none", edgecolors=_colour(model))
    ax.set_xlabel("fraction of zeros (test items)")
    ax.set_ylabel("active-topic F1")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(
        f"Planted topics at equal sparsity (noise rate {cell['noise_rate']:.2f}, short share "
        f"{cell['short_fraction']:.2f})\ncircles: as trained; then pruned below a threshold",
        fontsize=9,
    )
    return fig


def _real(plt: Any, study: dict[str, Any]) -> Any:
    blocks = study["real"]["by_topics"]
    metrics = [
        ("recall_at_10", "recall@10"),
        ("genre_map", "genre mAP"),
        ("zero_fraction", "fraction of zeros"),
    ]
    metrics = [m for m in metrics if any(m[0] in r for b in blocks for r in b["models"])]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.4))
    axes = np.atleast_1d(axes)
    models = blocks[0]["models"]
    width = 0.8 / len(models)
    for ax, (metric, title) in zip(axes, metrics, strict=True):
        for i, model in enumerate(models):
            rows = [next(m for m in b["models"] if m["name"] == model["name"]) for b in blocks]
            x = np.arange(len(blocks)) + (i - (len(models) - 1) / 2) * width
            ax.bar(
                x,
                [r.get(metric, {"mean": 0})["mean"] for r in rows],
                width,
                yerr=[r.get(metric, {"std": 0})["std"] for r in rows],
                color=_colour(model),
                label=_label(model),
                capsize=2,
            )
        ax.set_xticks(np.arange(len(blocks)), [f"{b['topics']} topics" for b in blocks])
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=len(labels),
        fontsize=8,
        bbox_to_anchor=(0.5, -0.06),
    )
    fig.suptitle(f"Real catalog: {study['data']['source'].rsplit('/', 1)[-1]}", y=1.02)
    return fig


def _tradeoff(plt: Any, study: dict[str, Any]) -> Any:
    points = study["tradeoff"]["points"]
    has_map = any("genre_map" in p for p in points)
    fig, axes = plt.subplots(1, 2 if has_map else 1, figsize=(10 if has_map else 5, 3.8))
    axes = np.atleast_1d(axes)
    for ax, metric, title in zip(
        axes, ("recall_at_10", "genre_map"), ("recall@10", "genre mAP"), strict=False
    ):  # one panel when the catalog has no genres
        for activation in dict.fromkeys(p["activation"] for p in points):
            ps = sorted(
                (p for p in points if p["activation"] == activation and metric in p),
                key=lambda p: p["l1"],
            )
            ax.errorbar(
                [p["zero_fraction"]["mean"] for p in ps],
                [p[metric]["mean"] for p in ps],
                xerr=[p["zero_fraction"]["std"] for p in ps],
                yerr=[p[metric]["std"] for p in ps],
                color=COLOURS.get(activation),
                label=activation,
                marker="o",
                capsize=2,
            )
            for p in ps:
                ax.annotate(
                    f"{p['l1']:g}",
                    (p["zero_fraction"]["mean"], p[metric]["mean"]),
                    fontsize=6,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
        ax.set_xlabel("fraction of zeros")
        ax.set_ylabel(title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(
        f"Sparsity against quality, L1 weight swept (labels), {study['tradeoff']['topics']} topics"
    )
    return fig


def _threshold(plt: Any, study: dict[str, Any]) -> Any:
    curve = study["tradeoff"].get("threshold")
    if not curve:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for activation in dict.fromkeys(p["activation"] for p in curve):
        ps = [p for p in curve if p["activation"] == activation]
        ps.sort(key=lambda p: p["zero_fraction"]["mean"])
        ax.errorbar(
            [p["zero_fraction"]["mean"] for p in ps],
            [p["recall_at_10"]["mean"] for p in ps],
            yerr=[p["recall_at_10"]["std"] for p in ps],
            color=COLOURS.get(activation),
            label=activation,
            marker="o",
            capsize=2,
        )
        trained = next(p for p in ps if p["level"] is None)
        ax.scatter(
            trained["zero_fraction"]["mean"],
            trained["recall_at_10"]["mean"],
            s=90,
            facecolors="none",
            edgecolors=COLOURS.get(activation),
        )
    ax.set_xlabel("fraction of zeros (test items)")
    ax.set_ylabel("recall@10")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(
        f"Pruning activations below a threshold, {study['tradeoff']['topics']} topics\n"
        "(circles: as trained)",
        fontsize=9,
    )
    return fig


def _parameters(plt: Any, study: dict[str, Any]) -> Any:
    learned = study.get("learned") or {}
    if not learned.get("threshold"):
        return None
    tau, beta = np.array(learned["threshold"]), np.array(learned["sharpness"])
    panels = [
        (tau, "threshold τ"),
        (np.log10(beta), "log10 sharpness β"),
        (tau + 1 / beta, "overlap where the gate is fully open, τ + 1/β"),
    ]
    if learned.get("prelu_slope"):
        panels.append((np.array(learned["prelu_slope"]), "PReLU slope a (for comparison)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.2))
    for ax, (values, title) in zip(axes, panels, strict=True):
        ax.hist(values, bins=30, color="#d62728" if "PReLU" not in title else "#9467bd")
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("topics")
        ax.grid(alpha=0.3)
    fig.suptitle(
        f"Learned per-topic parameters, overlap activation, {learned['topics']} topics, "
        f"{len(learned['seeds'])} seeds"
    )
    return fig


def _surfaces(plt: Any, study: dict[str, Any]) -> Any:
    surfaces = (study.get("learned") or {}).get("surfaces")
    if not surfaces:
        return None
    fig, axes = plt.subplots(1, len(surfaces), figsize=(4.4 * len(surfaces), 4.0))
    axes = np.atleast_1d(axes)
    for ax, s in zip(axes, surfaces, strict=True):
        h, J = np.array(s["h"]), np.array(s["overlap"])
        full_at = s["threshold"] + 1 / s["sharpness"]
        # Zoom on the gate and the bulk of the items; a few items lie far beyond both.
        h_lo = min(float(np.quantile(h, 0.01)), -0.1)
        h_hi = max(float(np.quantile(h, 0.98)), 0.1)
        j_hi = min(1.0, max(3 * full_at, float(np.quantile(J, 0.95)), 0.01))
        hh, jj = np.meshgrid(np.linspace(h_lo, h_hi, 200), np.linspace(0, j_hi, 200))
        gate = np.clip(s["sharpness"] * (jj - s["threshold"]), 0, 1)
        y = np.where(hh >= 0, hh, s["slope"] * hh) * gate
        mesh = ax.pcolormesh(hh, jj, y, shading="auto", cmap="viridis")
        fig.colorbar(mesh, ax=ax, pad=0.02)
        for level in (s["threshold"], full_at):
            ax.axhline(level, color="white", linewidth=0.8)
        ax.scatter(h, J, s=4, c="#ff7f0e", alpha=0.6, label="test items")
        ax.set_xlim(h_lo, h_hi)
        ax.set_ylim(0, j_hi)
        ax.set_xlabel("h = x·w + b")
        ax.set_title(
            f"topic {s['topic']}: τ={s['threshold']:.3f}, β={s['sharpness']:.0f}\n"
            + ", ".join(s["keywords"][:3]),
            fontsize=8,
        )
    axes[0].set_ylabel("overlap J")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(
        "y(h, J) = relu(h) · clamp(β (J − τ), 0, 1), colour = y; white lines: J = τ (gate "
        "opens) and J = τ + 1/β (fully open)",
        fontsize=9,
        y=1.02,
    )
    fig.tight_layout()
    return fig


def _dead(plt: Any, study: dict[str, Any]) -> Any:
    runs = [r for r in study["real"]["runs"] if "dead_history" in r]
    if not runs:
        return None
    topics = list(dict.fromkeys(r["topics"] for r in runs))
    fig, axes = plt.subplots(1, len(topics), figsize=(5 * len(topics), 3.4), squeeze=False)
    for ax, k in zip(axes[0], topics, strict=True):
        seen = set()
        for r in (r for r in runs if r["topics"] == k):
            a = r["activation"]
            ax.plot(
                np.arange(1, len(r["dead_history"]) + 1),
                r["dead_history"],
                color=COLOURS.get(a),
                alpha=0.7,
                label=None if a in seen else a,
            )
            seen.add(a)
        most = max(max(r["dead_history"]) for r in runs if r["topics"] == k)
        ax.set_ylim(-0.5, max(most, 1) + 0.5)  # a flat line at zero should read as zero
        ax.set_title(f"{k} topics")
        ax.set_xlabel("epoch")
        ax.set_ylabel("dead topics (validation items)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Topics active on no validation item, per epoch (one line per seed)", y=1.02)
    return fig


def _cost(plt: Any, study: dict[str, Any]) -> Any:
    rows = study.get("cost", {}).get("rows")
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.2))
    names = [r["name"] for r in rows]
    ax.barh(
        names,
        [r["items_per_second_best"] / 1e6 for r in rows],
        color=[COLOURS.get(n, "#7f7f7f") for n in names],
    )
    ax.set_xlabel("million items/s (fastest of the interleaved rounds)")
    c = study["cost"]
    ax.set_title(
        f"Projection kernel on the CPU: {c['items']} items, {c['topics']} topics, "
        f"{c['threads']} threads",
        fontsize=9,
    )
    ax.grid(axis="x", alpha=0.3)
    return fig
