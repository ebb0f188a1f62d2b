"""The study's targets against what it measured: one row each, met or not."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .config import StudyConfig

BASELINES = ("relu", "leaky_relu", "prelu")


def targets(study: dict[str, Any], config: StudyConfig) -> list[dict[str, Any]]:
    """The issue's targets against the measurements; the best baseline is the best of relu,
    leaky_relu and prelu on each metric."""
    rows: list[dict[str, Any]] = []

    def by_activation(models: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return {m["activation"]: m for m in models if m.get("activation")}

    base = [
        c
        for c in study["planted"]["cells"]
        if np.isclose(c["noise_rate"], config.base_noise_rate)
        and np.isclose(c["short_fraction"], config.base_short_fraction)
    ]
    if base:
        m = by_activation(base[0]["models"])
        if "overlap" in m and any(a in m for a in BASELINES):
            best = max((a for a in BASELINES if a in m), key=lambda a: m[a]["topic_f1"]["mean"])
            ours, theirs = m["overlap"]["topic_f1"]["mean"], m[best]["topic_f1"]["mean"]
            rows.append(
                {
                    "target": f"planted (noise rate {config.base_noise_rate:.2f}): active-topic "
                    "F1 ≥ best baseline + 0.10",
                    "measured": f"{ours:.3f} vs {theirs:.3f} ({best}), {ours - theirs:+.3f}",
                    "met": bool(ours - theirs >= 0.10),
                }
            )
    for block in study["real"]["by_topics"]:
        m = by_activation(block["models"])
        if "overlap" not in m or not any(a in m for a in BASELINES):
            continue
        for metric in ("recall_at_10", "genre_map"):
            if metric not in m["overlap"]:
                continue
            best = max((a for a in BASELINES if a in m), key=lambda a: m[a][metric]["mean"])
            o, b = m["overlap"][metric], m[best][metric]
            slack = max(o["std"], b["std"])
            rows.append(
                {
                    "target": f"{block['topics']} topics: {metric} ≥ best baseline − one std",
                    "measured": f"{o['mean']:.3f} ± {o['std']:.3f} vs {b['mean']:.3f} ± "
                    f"{b['std']:.3f} ({best})",
                    "met": bool(o["mean"] >= b["mean"] - slack),
                }
            )
        densest = max((a for a in BASELINES if a in m), key=lambda a: m[a]["zero_fraction"]["mean"])
        z, zb = m["overlap"]["zero_fraction"]["mean"], m[densest]["zero_fraction"]["mean"]
        rows.append(
            {
                "target": f"{block['topics']} topics: zeros ≥ 2 × the sparsest baseline",
                "measured": f"{z:.2f} vs {zb:.2f} ({densest})"
                + (f", {z / zb:.1f} ×" if zb > 0 else ""),
                "met": bool(z >= 2 * zb),
            }
        )
    cost_rows = {r["name"]: r for r in study.get("cost", {}).get("rows", [])}
    if "overlap" in cost_rows and "relu" in cost_rows:
        for ref in ("relu", "plain relu"):
            if ref not in cost_rows:
                continue
            ratio = (
                cost_rows[ref]["items_per_second_best"]
                / cost_rows["overlap"]["items_per_second_best"]
            )
            rows.append(
                {
                    "target": f"cost: overlap kernel time ≤ 1.10 × {ref} (fastest pass)",
                    "measured": f"{ratio:.2f} ×",
                    "met": bool(ratio <= 1.10),
                }
            )
    return rows
