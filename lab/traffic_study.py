"""Drift and emerging topics on a catalog split by release year.

Version 1 is trained on the training movies released up to year Y. Then, per seed:

- Calibration of the drift score (`traffic.drift_score`, the Jensen-Shannon divergence of two
  sets' topic distributions under version 1): between two disjoint random samples of m movies
  up to Y (no drift; `null_draws` draws), against a random sample of m movies up to Y versus the
  m movies after Y (`time_draws` draws of the first sample). m is the number of movies after Y,
  or half of those up to Y if fewer. Also each set against version 1's own training baseline,
  which is what the server computes.
- The unknown keywords of the post-Y movies as the server's sketch ranks them (first seed).
- Version 2 trained on every training movie: a child of version 1 (`--parent`), children with K
  added topics (`--add-topics K` for each K of the sweep), and from scratch. Recall@10 of a
  masked keyword on the held-out movies released after Y, and for the children the
  similarity of the kept topics to version 1's.

Version 1 trains on 80% of the movies up to Y; version 2 on those and half of the movies after
Y (drawn once with `split_seed`); the other half is held out. The JSON is rewritten after
every seed, so a long run can be read while it goes.

    python -m lab.traffic_study \\
        --input ../shared/data/tmdb_5000_movies.csv.zip --year 2010 \\
        --seeds 0,1,2,3,4 --add-topics 2,5,10 --output runs/traffic
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lab.continuity import _recall, release_years
from topicproj.models.core.options import DEFAULTS
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.core.traffic import SpaceSaving, TrafficCounts, drift_score
from topicproj.models.data.catalog import read_catalog


def _counts(
    Y: np.ndarray, known: np.ndarray, unknown: np.ndarray, rows: np.ndarray
) -> TrafficCounts:
    return TrafficCounts.of_batch(Y[rows], known[rows], unknown[rows])


def calibrate(
    model: TopicModel,
    items: list[list[str]],
    after: np.ndarray,
    *,
    seed: int,
    null_draws: int,
    time_draws: int,
) -> dict[str, Any]:
    """Drift scores with no drift (random halves up to Y) and across the year (see the doc)."""
    batch = model.vocabulary_.map_batch(items)
    Y = model.transform(items)
    known, unknown = batch.known, batch.unknown
    before_rows = np.flatnonzero(~after)
    after_rows = np.flatnonzero(after)
    m = min(len(after_rows), len(before_rows) // 2)
    rng = np.random.default_rng(seed)
    base = model.baseline_.counts
    post = _counts(Y, known, unknown, after_rows[:m] if m < len(after_rows) else after_rows)
    null, null_base, across = [], [], []
    for _ in range(null_draws):
        perm = rng.permutation(before_rows)
        a, b = _counts(Y, known, unknown, perm[:m]), _counts(Y, known, unknown, perm[m : 2 * m])
        null.append(drift_score(a, b))
        null_base.append(drift_score(a, base))
    for _ in range(time_draws):
        a = _counts(Y, known, unknown, rng.choice(before_rows, m, replace=False))
        across.append(drift_score(a, post))
    return {
        "m": int(m),
        "null": _quantiles(null),
        "across_year": _quantiles(across),
        "null_vs_baseline": _quantiles(null_base),
        "after_vs_baseline": drift_score(post, base),
        "unknown_ratio_before": _counts(Y, known, unknown, before_rows).unknown_ratio(),
        "unknown_ratio_after": post.unknown_ratio(),
        "baseline_unknown_ratio": model.baseline_.unknown_ratio,
        "unassigned_before": _counts(Y, known, unknown, before_rows).unassigned_ratio(),
        "unassigned_after": post.unassigned_ratio(),
    }


def _quantiles(values: list[float | None]) -> dict[str, float]:
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    return {
        "mean": float(v.mean()),
        "std": float(v.std()),
        "p95": float(np.quantile(v, 0.95)),
        "p99": float(np.quantile(v, 0.99)),
        "max": float(v.max()),
        "min": float(v.min()),
    }


RECALL_MASKS = 3  # masked-keyword draws averaged per model: the held-out set is a few hundred


def _recall_mean(model: TopicModel, items: list[list[str]]) -> float:
    return float(np.mean([_recall(model, items, s) for s in range(RECALL_MASKS)]))


def unknown_keywords(model: TopicModel, items: list[list[str]], top: int) -> list[dict[str, Any]]:
    """The sketch's top unknown keywords of `items`, with their exact counts beside them."""
    from collections import Counter

    from topicproj.models.core.traffic import batch_unknown_keywords

    flat = [k for kws in items for k in kws]
    ids = model.vocabulary_._lookup_raw(flat)
    unknown = batch_unknown_keywords(flat, ids)
    sketch = SpaceSaving(2000)
    for s in range(0, len(unknown), 256):  # in request-sized pieces, as the server sees them
        sketch.update(unknown[s : s + 256])
    exact = Counter(unknown)
    return [
        {"keyword": k, "count": c, "error": e, "exact": exact[k]} for k, c, e in sketch.top(top)
    ]


def export_split(path: str, *, year: int, seed: int, n_topics: int, output: Path) -> None:
    """Version 1 of `seed` (as the experiment trains it) and the catalogs of movies up to Y and
    after Y as JSONL, for `topicproj drift` and `topicproj traffic` by hand."""
    catalog = read_catalog(path)
    years_by_id = release_years(path)
    years = [years_by_id.get(str(i)) for i in catalog.ids]
    dated = [i for i, y in enumerate(years) if y is not None and catalog.keywords[i]]
    before = [i for i in dated if years[i] <= year]  # type: ignore[operator]
    rng = np.random.default_rng(0)  # the experiment's split_seed
    before = [before[j] for j in rng.permutation(len(before))]
    train_before = before[: round(0.8 * len(before))]
    model = TopicModel(n_topics, random_state=seed, device="cpu")
    model.fit([catalog.keywords[i] for i in train_before])
    output.mkdir(parents=True, exist_ok=True)
    model.save(output / "v1", overwrite=True)
    for name, keep in (("before", lambda y: y <= year), ("after", lambda y: y > year)):
        with open(output / f"{name}.jsonl", "w", encoding="utf-8") as f:
            for i in dated:
                if keep(years[i]):
                    f.write(json.dumps({"id": catalog.ids[i], "keywords": catalog.keywords[i]}))
                    f.write("\n")


def run_experiment(
    path: str,
    *,
    year: int,
    seeds: Sequence[int],
    add_topics: Sequence[int],
    n_topics: int,
    split_seed: int,
    null_draws: int,
    time_draws: int,
    output: Path,
    command: str,
    max_epochs: int,
) -> dict[str, Any]:
    catalog = read_catalog(path)
    years_by_id = release_years(path)
    years = [years_by_id.get(str(i)) for i in catalog.ids]
    dated = [i for i, y in enumerate(years) if y is not None and catalog.keywords[i]]
    before = [i for i in dated if years[i] <= year]  # type: ignore[operator]
    later = [i for i in dated if years[i] > year]  # type: ignore[operator]
    rng = np.random.default_rng(split_seed)
    before = [before[j] for j in rng.permutation(len(before))]
    later = [later[j] for j in rng.permutation(len(later))]
    # Version 1 trains on 80% of the movies up to Y; version 2 adds half of those after Y, and
    # the other half is held out for recall (the movies version 2 is meant to serve better).
    train_before = before[: round(0.8 * len(before))]
    train_later = later[: len(later) // 2]
    old_items = [catalog.keywords[i] for i in train_before]
    all_items = old_items + [catalog.keywords[i] for i in train_later]
    test_after = [catalog.keywords[i] for i in later[len(later) // 2 :]]
    every = [catalog.keywords[i] for i in dated]
    after = np.array([years[i] > year for i in dated])  # type: ignore[operator]
    result: dict[str, Any] = {
        "command": command,
        "setting": {
            "year": year,
            "n_topics": n_topics,
            "add_topics": list(add_topics),
            "seeds": list(seeds),
            "split_seed": split_seed,
            "items_first": len(old_items),
            "items_all": len(all_items),
            "items_test_after": len(test_after),
            "items_dated": len(dated),
            "items_after": int(after.sum()),
            "max_epochs": max_epochs,
        },
        "runs": [],
    }
    for seed in seeds:
        params = {"random_state": seed, "device": "cpu", "max_epochs": max_epochs}
        row: dict[str, Any] = {"seed": seed}
        start = time.perf_counter()
        first = TopicModel(n_topics, **params).fit(old_items)
        row["first"] = {
            "recall_at_10": _recall_mean(first, test_after),
            "train_seconds": time.perf_counter() - start,
        }
        row["calibration"] = calibrate(
            first, every, after, seed=seed, null_draws=null_draws, time_draws=time_draws
        )
        if seed == seeds[0]:
            result["unknown_keywords"] = unknown_keywords(
                first, [every[i] for i in np.flatnonzero(after)], 20
            )
        variants: list[tuple[str, TopicModel | None, int]] = [("child", first, 0)]
        variants += [(f"child+{k}", first, k) for k in add_topics]
        variants += [("scratch", None, 0), (f"scratch+{max(add_topics)}", None, max(add_topics))]
        for name, parent, k in variants:
            start = time.perf_counter()
            model = TopicModel(n_topics + k, **params).fit(
                all_items, parent=parent, add_topics=k if parent is not None else 0
            )
            lineage = model.lineage_ if parent is not None else model.align_to(first)
            kept = np.asarray(lineage.similarity[:n_topics])
            row[name] = {
                "recall_at_10": _recall_mean(model, test_after),
                "kept_similarity_mean": float(kept.mean()),
                "kept_similarity_min": float(kept.min()),
                "kept_at_0_9": float((kept >= 0.9).mean()),
                "added_new": int(sum(lineage.new[n_topics:])),
                "train_seconds": time.perf_counter() - start,
                "epochs": model.n_epochs_,
            }
            print(f"seed {seed} {name}: {row[name]}", file=sys.stderr, flush=True)
        result["runs"].append(row)
        output.mkdir(parents=True, exist_ok=True)
        (output / "traffic_study.json").write_text(json.dumps(result, indent=1))
        print(f"seed {seed}: calibration {row['calibration']}", file=sys.stderr, flush=True)
    return result


def _ms(values: list[float], digits: int) -> str:
    v = np.asarray(values, dtype=np.float64)
    return f"{v.mean():.{digits}f} ± {v.std():.{digits}f}"


def report_markdown(result: dict[str, Any]) -> str:
    """The tables of RESULTS.md from the JSON (mean ± std over the seeds that finished)."""
    runs = result["runs"]
    setting = result["setting"]
    lines = [
        f"Seeds finished: {len(runs)} of {len(setting['seeds'])}; {setting['items_first']} "
        f"training movies up to {setting['year']}, {setting['items_all']} for version 2, "
        f"{setting['items_test_after']} held-out movies after {setting['year']}; "
        f"{setting['n_topics']} topics.",
        "",
        "| drift score (JS divergence) | mean | p95 | p99 | max | min |",
        "|---|---|---|---|---|---|",
    ]
    m = runs[0]["calibration"]["m"]
    rows = [
        (f"two random sets of {m} movies up to {setting['year']} (no drift)", "null"),
        (f"{m} movies up to {setting['year']} vs the {m} after", "across_year"),
        (f"{m} movies up to {setting['year']} vs version 1's baseline", "null_vs_baseline"),
    ]
    for label, key in rows:
        cells = [
            _ms([r["calibration"][key][q] for r in runs], 5)
            for q in ("mean", "p95", "p99", "max", "min")
        ]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    after = _ms([r["calibration"]["after_vs_baseline"] for r in runs], 5)
    lines.append(f"| the {m} after {setting['year']} vs version 1's baseline | {after} | | | | |")
    lines += [
        "",
        "| | up to Y | after Y | baseline (held out) |",
        "|---|---|---|---|",
        "| unknown-keyword rate | "
        + " | ".join(
            _ms([r["calibration"][k] for r in runs], 3)
            for k in ("unknown_ratio_before", "unknown_ratio_after", "baseline_unknown_ratio")
        )
        + " |",
        "| items with no topic | "
        + " | ".join(
            _ms([r["calibration"][k] for r in runs], 3)
            for k in ("unassigned_before", "unassigned_after")
        )
        + " | |",
        "",
        "| version 2 | recall@10, held-out movies after Y | change against the child, "
        "same seed | kept-topic similarity (mean) | kept topics ≥ 0.9 | lowest kept similarity "
        "| epochs |",
        "|---|---|---|---|---|---|---|",
        f"| (version 1 itself) | {_ms([r['first']['recall_at_10'] for r in runs], 4)} "
        "| | | | | |",
    ]
    names = [k for k in runs[0] if isinstance(runs[0][k], dict) and "kept_at_0_9" in runs[0][k]]
    for name in names:
        got = [r[name] for r in runs if name in r]
        # Seeds differ more from each other than versions of one seed do: the paired change
        # is what says whether added topics help, its std the noise of that claim.
        paired = [r[name]["recall_at_10"] - r["child"]["recall_at_10"] for r in runs if name in r]
        lines.append(
            f"| {name} | {_ms([g['recall_at_10'] for g in got], 4)} "
            f"| {'' if name == 'child' else _ms(paired, 4)} "
            f"| {_ms([g['kept_similarity_mean'] for g in got], 3)} "
            f"| {_ms([g['kept_at_0_9'] for g in got], 2)} "
            f"| {_ms([g['kept_similarity_min'] for g in got], 3)} "
            f"| {_ms([g['epochs'] for g in got], 0)} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--input", required=True)
    p.add_argument("--year", type=int, default=2010)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--add-topics", default="2,5,10")
    p.add_argument("--topics", type=int, default=DEFAULTS.n_topics)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--null-draws", type=int, default=200)
    p.add_argument("--time-draws", type=int, default=50)
    p.add_argument("--max-epochs", type=int, default=DEFAULTS.max_epochs)
    p.add_argument("--output", required=True)
    p.add_argument(
        "--report", action="store_true", help="print the tables of an earlier run's JSON and stop"
    )
    p.add_argument(
        "--export",
        action="store_true",
        help="write the first seed's version 1 and the catalogs up to and after Y, then stop",
    )
    args = p.parse_args(argv)
    if args.export:
        seed = int(args.seeds.split(",")[0])
        export_split(
            args.input, year=args.year, seed=seed, n_topics=args.topics, output=Path(args.output)
        )
        return 0
    if args.report:
        print(report_markdown(json.loads((Path(args.output) / "traffic_study.json").read_text())))
        return 0
    command = "python -m lab.traffic_study " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    run_experiment(
        args.input,
        year=args.year,
        seeds=[int(s) for s in args.seeds.split(",")],
        add_topics=[int(k) for k in args.add_topics.split(",") if k],
        n_topics=args.topics,
        split_seed=args.split_seed,
        null_draws=args.null_draws,
        time_draws=args.time_draws,
        output=Path(args.output),
        command=command,
        max_epochs=args.max_epochs,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
