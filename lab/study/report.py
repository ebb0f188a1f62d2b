"""The activation study on disk: `study.md` (every table), `study.json` (raw numbers), PNGs.

The folder is written whole or not at all: everything goes into a temporary sibling folder,
which then takes the destination's name, so a crash never leaves a half-written study behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lab.evaluation import COLUMNS
from topicproj.models.core.options import DEFAULT_L1

MODEL_COLUMNS = COLUMNS  # the evaluation report's columns
# On the short items, the model-level columns (NPMI, diversity, timings) would only repeat.
SHORT_COLUMNS = tuple(
    c for c in MODEL_COLUMNS if c[0] not in ("npmi", "diversity", "train_seconds", "dead_topics")
)


def cell(value: Any, digits: int) -> str:
    """mean ± std (std left out when zero), a plain number, or '-'."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        if value["std"] > 0:
            return f"{value['mean']:.{digits}f} ± {value['std']:.{digits}f}"
        return f"{value['mean']:.{digits}f}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: list[dict[str, Any]], columns: tuple[tuple[str, str, int], ...]) -> list[str]:
    if not rows:
        return ["(no such items)"]
    present = [c for c in columns if any(c[0] in r for r in rows)]
    lines = ["| model | " + " | ".join(c[1] for c in present) + " |"]
    lines.append("|---|" + "---|" * len(present))
    for r in rows:
        name = r.get("activation") or r["name"]
        lines.append(f"| {name} | " + " | ".join(cell(r.get(k), d) for k, _, d in present) + " |")
    return lines


def pruned_table(rows: list[dict[str, Any]]) -> list[str]:
    """Active-topic F1 at equal sparsity: each model pruned to each share of zeros."""
    levels = sorted({q for r in rows for q in r["levels"]})
    if not levels:
        return []
    out = [
        "Every model pruned to the same share of zeros (activations at or below a threshold "
        "set to zero; the threshold from the model's training items). Active-topic F1 "
        "('-': sparser than that as trained):",
        "",
        "| model | " + " | ".join(f"F1 at {q} zeros" for q in levels) + " |",
        "|---|" + "---|" * len(levels),
    ]
    for r in rows:
        cells = [cell(r["levels"][q]["topic_f1"], 3) if q in r["levels"] else "-" for q in levels]
        out.append(f"| {r.get('activation') or r['name']} | " + " | ".join(cells) + " |")
    return [*out, ""]


def study_markdown(study: dict[str, Any], command: str | None = None) -> str:
    c, d = study["config"], study["data"]
    out = ["# Activation study", ""]
    if command:
        out += [f"Command: `{command}`", ""]
    out += [
        f"{study['seconds']:.0f} s in all. Every table: mean ± std over seeds. Max "
        f"{c['max_epochs']} epochs with early stopping, L1 weight {DEFAULT_L1:g} unless said.",
        "",
        "## Targets",
        "",
        "| target | measured | met? |",
        "|---|---|---|",
    ]
    out += [
        f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |"
        for t in study["targets"]
    ]

    out += ["", "## 1. Planted topics", ""]
    out += [
        f"Synthetic catalogs of {c['planted_items']} items, {c['planted_topics']} planted topics "
        f"of {c['planted_keywords_per_topic']} keywords, {c['planted_filler_keywords']} filler "
        f"keywords; seeds {', '.join(map(str, c['planted_seeds']))}; min-df "
        f"{c['planted_min_df']}. Noise rate: share of the longer items that carry one to three "
        "noise keywords. Short share: share of items with one or two keywords.",
        "",
    ]
    for cl in study["planted"]["cells"]:
        out += [
            f"### noise rate {cl['noise_rate']:.2f}, short share {cl['short_fraction']:.2f}",
            "",
            *table(cl["models"], MODEL_COLUMNS),
            "",
            "On the 1-2 keyword test items alone:",
            "",
            *table(cl["models_short"], SHORT_COLUMNS),
            "",
            *pruned_table(cl.get("pruned") or []),
        ]

    real = study["real"]
    out += [
        "## 2. Real catalog",
        "",
        f"`{d['source']}`: {d['items']} items, {d['train_items']} train / {d['test_items']} "
        f"test, {d['keywords']} keywords with min-df {d['min_df']}. Seeds "
        f"{', '.join(map(str, c['seeds']))}. The 1-2 keyword tables score the same models on "
        f"the {real['short_test_items']} test items with one or two known keywords "
        f"({real['short_ranked_items']} of them with two, which is what recall@10 and MRR need).",
        "",
    ]
    for block in real["by_topics"]:
        out += [
            f"### {block['topics']} topics",
            "",
            *table(block["models"], MODEL_COLUMNS),
            "",
            "On the 1-2 keyword test items alone:",
            "",
            *table(block["models_short"], SHORT_COLUMNS),
            "",
        ]

    t = study["tradeoff"]
    out += [
        "## 3. Sparsity against quality",
        "",
        f"{t['topics']} topics, L1 weight swept, seeds {', '.join(map(str, c['tradeoff_seeds']))}.",
        "",
        "| activation | L1 | zeros | recall@10 | genre mAP | active |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {p['activation']} | {p['l1']:g} | {cell(p.get('zero_fraction'), 2)} | "
        f"{cell(p.get('recall_at_10'), 3)} | {cell(p.get('genre_map'), 3)} | "
        f"{cell(p.get('active_topics'), 1)} |"
        for p in t["points"]
    ]
    out += [
        "",
        "Pareto frontier (no other point has both more zeros and a higher mean recall@10):",
        "",
        "| activation | L1 | zeros | recall@10 |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {f['activation']} | {f['l1']:g} | {f['zeros']:.2f} | {f['recall']:.3f} |"
        for f in t["frontier"]
    ]

    curve = t.get("threshold") or []
    if curve:
        levels = list(dict.fromkeys(p["level"] for p in curve if p["level"] is not None))
        levels.sort()
        out += [
            "",
            "Threshold sweep on the models of part 2 (all seeds, no retraining): activations at "
            "or below t are set to zero, t being the quantile of the model's own activations on "
            "the training items that makes the given share zero. Recall@10 at each share of "
            "zeros ('-': the model is already sparser as trained):",
            "",
            "| activation | as trained: zeros | as trained: recall@10 | "
            + " | ".join(f"recall@10 at {q:.2f} zeros" for q in levels)
            + " |",
            "|---|---|---|" + "---|" * len(levels),
        ]
        for a in dict.fromkeys(p["activation"] for p in curve):
            own = {p["level"]: p for p in curve if p["activation"] == a}
            cells = [cell(own[q]["recall_at_10"], 3) if q in own else "-" for q in levels]
            out.append(
                f"| {a} | {cell(own[None]['zero_fraction'], 2)} | "
                f"{cell(own[None]['recall_at_10'], 3)} | " + " | ".join(cells) + " |"
            )

    learned = study.get("learned") or {}
    if learned:
        out += [
            "",
            "## 4. What the overlap activation learned",
            "",
            f"{learned['topics']} topics, seed {learned['seed']}: topics by threshold τ, highest "
            "first (the five highest and the five lowest). Fully open at: τ + 1/β. Median J: "
            "median overlap of the test items with h > 0. Vetoed: share of the test items with "
            "h > 0 that the gate holds at exactly zero. Active: share of test items on which the "
            "topic fires.",
            "",
            "| topic | τ | β | fully open at | median J | vetoed | active | top keywords |",
            "|---|---|---|---|---|---|---|---|",
        ]
        rows = learned["table"]
        shown = rows if len(rows) <= 10 else rows[:5] + rows[-5:]
        out += [
            f"| {r['topic']} | {r['threshold']:.3f} | {r['sharpness']:.1f} | {r['full_at']:.3f} "
            f"| {r['median_overlap']:.3f} | {r['vetoed']:.2f} | {r['active']:.2f} | "
            f"{', '.join(r['keywords'][:5])} |"
            for r in shown
        ]

    out += [
        "",
        "## 5. Dead topics",
        "",
        "Topics active on no validation item: after the first epoch, the most at any epoch, at "
        "the epoch whose weights are kept; and topics active on no test item at the end.",
        "",
        "| topics | model | first epoch | most | kept epoch | test |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {r['topics']} | {r['activation']} | {cell(r['first_epoch'], 1)} | "
        f"{cell(r['most'], 1)} | {cell(r['kept_epoch'], 1)} | {cell(r['test'], 1)} |"
        for r in study["dead"]
    ]

    cost = study["cost"]
    out += [
        "",
        "## 6. Cost",
        "",
        f"The projection kernel alone on the CPU ({cost['threads']} threads): {cost['items']} "
        f"items per call, {cost['topics']} topics, {cost['keywords']} keywords, "
        f"{cost['rounds']} interleaved rounds; the fastest pass is the cost of the code, the "
        "median also measures how busy the shared machine was. 'plain relu' is relu(x W + b) with "
        "no overlap computed; the relu, leaky_relu and prelu settings share the overlap "
        "activation's code path.",
        "",
        "| activation | items/s (fastest pass) | items/s (median) | time / relu (fastest) |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {r['name']} | {r['items_per_second_best']:,.0f} | "
        f"{r['items_per_second_median']:,.0f} | {cell(r['relative_to_relu'], 2)} |"
        for r in cost["rows"]
    ]
    return "\n".join(out) + "\n"


def write_study(
    study: dict[str, Any], directory: str | Path, command: str | None = None, plots: bool = True
) -> Path:
    """Write the study folder atomically: it appears complete, or the old one stays."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the study is for reading
    try:
        (tmp / "study.json").write_text(json.dumps(study, indent=1) + "\n", encoding="utf-8")
        (tmp / "study.md").write_text(study_markdown(study, command), encoding="utf-8")
        if plots:
            from .plots import write_plots

            write_plots(study, tmp)
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{tmp.name.rsplit('.', 1)[-1]}")
            directory.rename(old)
        tmp.rename(directory)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory
