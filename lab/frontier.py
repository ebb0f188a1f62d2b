"""The sparsity frontier of an equal-sparsity run (`equal_sparsity.py`), drawn from
its JSON alone: each gate setting as trained, against the ReLU-family baselines pruned to that
setting's share of zeros, one panel per metric.

A point to the upper right of the pruned curves is a gate that is both sparser and better than
thresholding a baseline after training; a point on or under them is sparsity a baseline gets for
free. matplotlib (the `study` extra) is imported only when drawing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lab.study.plots import COLOURS, DPI

METRICS = (("recall_at_10", "recall@10 of a hidden keyword"), ("topic_f1", "active-topic F1"))
MARKERS = "osD^v<>p"
# The baselines keep their colours from the study's figures; gate forms take the rest.
GATE_COLOURS = ("#d62728", "#ff7f0e", "#2ca02c", "#8c564b", "#e377c2", "#bcbd22")


def frontier_series(result: dict[str, Any], metric: str) -> dict[str, list[tuple[float, ...]]]:
    """Per gate form and per pruned baseline: (zeros, mean, std) points sorted by zeros.

    A gate form's points are its settings (L1 weights or targets), each the mean over seeds; a
    baseline's are the same levels, pruned seed by seed to each gate run's zeros.
    """
    groups: dict[tuple[str, Any, Any], list[dict[str, Any]]] = {}
    for p in result["points"]:
        groups.setdefault((p["activation"], p["l1"], p.get("target")), []).append(p)
    series: dict[str, list[tuple[float, ...]]] = {}
    for (activation, _, _), ps in groups.items():
        if metric not in ps[0]["gate"]:
            continue
        level = float(np.mean([p["level"] for p in ps]))
        gate = np.array([p["gate"][metric] for p in ps])
        series.setdefault(activation, []).append((level, gate.mean(), _std(gate)))
        for b in result["args"]["baselines"]:
            vals = np.array([p[b][metric] for p in ps if b in p and metric in p[b]])
            if len(vals):
                series.setdefault(f"{b} pruned", []).append((level, vals.mean(), _std(vals)))
    return {k: sorted(v) for k, v in series.items()}


def _std(v: np.ndarray) -> float:
    return float(v.std(ddof=1)) if len(v) > 1 else 0.0


def write_frontier(result: dict[str, Any], path: Path) -> Path | None:
    """frontier.png for `result`; None when it has no gate point to draw."""
    panels = [(m, label) for m, label in METRICS if frontier_series(result, m)]
    if not panels:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
    for ax, (metric, label) in zip(axes[0], panels, strict=True):
        gates = 0
        for name, points in frontier_series(result, metric).items():
            x, y, e = (np.array(c) for c in zip(*points, strict=True))
            if name.endswith(" pruned"):
                colour = COLOURS.get(name.removesuffix(" pruned"), "#7f7f7f")
                ax.plot(x, y, "--", color=colour, lw=1.2, label=name)
                ax.fill_between(x, y - e, y + e, color=colour, alpha=0.12, lw=0)
            else:
                marker = MARKERS[gates % len(MARKERS)]
                colour = GATE_COLOURS[gates % len(GATE_COLOURS)]
                gates += 1
                ax.errorbar(
                    x, y, yerr=e, fmt=marker + "-", color=colour, ms=5, capsize=3, label=name
                )
        ax.set_xlabel("share of zero activations (training items)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    d = result["data"]
    fig.suptitle(
        f"{d['catalog']}: {result['args']['topics']} topics, seeds {result['args']['seeds']} "
        "(mean ± std)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
