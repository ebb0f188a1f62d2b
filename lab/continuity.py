"""Do topics keep their meaning from one version to the next? The year-split experiment.

A catalog grows: version 1 is trained on the items released up to year Y, version 2 on every
item. Version 2 is trained twice with the same seed: as a child of version 1 (warm start, then
aligned) and from scratch (then aligned to version 1 the same way, so both are numbered as well
as an assignment can). Per seed it reports:

- kept share: the topics whose keyword weights have a cosine of at least `KEPT_SIMILARITY` with
  version 1's topic of the same number;
- stored-vector cosine: for the items of version 1's catalog, the mean cosine between the topic
  vector version 1 gave them and the one version 2 gives them (items zero under both are left
  out; an item zero under only one counts 0), i.e. how far stored projections drift;
- recall@10 of the masked keyword on held-out items, as in `topicproj evaluate`.

Items are split 80/20 by item once (`split_seed`); both versions train on training items only.

    python -m lab.continuity \\
        --input ../shared/data/tmdb_5000_movies.csv.zip \\
        --year 2010 --seeds 0,1,2,3,4 --output runs/continuity
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from lab import scoring
from topicproj.models.core.lineage import KEPT_SIMILARITY
from topicproj.models.core.options import DEFAULTS
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.catalog import Catalog, read_catalog

FIGURES = ("kept_share", "stored_cosine", "recall_at_10", "epochs", "train_seconds")


def release_years(path: str | Path) -> dict[str, int]:
    """Item id -> release year, from a TMDB-style CSV (or a zip holding one)."""
    path = Path(path)
    options = pacsv.ConvertOptions(
        include_columns=["id", "release_date"],
        column_types={"id": pa.string(), "release_date": pa.string()},
    )
    parse = pacsv.ParseOptions(newlines_in_values=True)
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as z:
            name = next(n for n in z.namelist() if n.endswith(".csv"))
            with z.open(name) as f:
                table = pacsv.read_csv(f, parse_options=parse, convert_options=options)
    else:
        table = pacsv.read_csv(path, parse_options=parse, convert_options=options)
    years = pc.utf8_slice_codeunits(table["release_date"], 0, 4).to_pylist()
    return {
        i: int(y) for i, y in zip(table["id"].to_pylist(), years, strict=True) if y and y.isdigit()
    }


def stored_cosine(before: np.ndarray, after: np.ndarray) -> float:
    """Mean cosine between rows of two projections of the same items (see the module doc)."""
    nb, na = np.linalg.norm(before, axis=1), np.linalg.norm(after, axis=1)
    either = (nb > 0) | (na > 0)
    both = (nb > 0) & (na > 0)
    cos = np.zeros(len(before))
    cos[both] = (before[both] * after[both]).sum(axis=1) / (nb[both] * na[both])
    return float(cos[either].mean())


def _recall(model: TopicModel, items: list[list[str]], seed: int) -> float:
    X = model.vocabulary_.map_batch(items).to_csr(len(model.vocabulary_))
    X.sum_duplicates()
    X.data[:] = 1.0
    visible, _, hidden = scoring.hide_one_keyword(X, seed)
    recall, _ = scoring.ranking_metrics(model.keyword_scores(visible), visible, hidden)
    return recall


def run_experiment(
    catalog: Catalog,
    years: Sequence[int | None],
    *,
    year: int,
    seeds: Sequence[int],
    n_topics: int = DEFAULTS.n_topics,
    split_seed: int = 0,
    progress: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """The experiment on `catalog`, item i released in `years[i]` (None: unknown, left out)."""
    dated = [i for i, y in enumerate(years) if y is not None and catalog.keywords[i]]
    rng = np.random.default_rng(split_seed)
    order = rng.permutation(len(dated))
    cut = round(len(dated) * 0.8)
    train = sorted(dated[j] for j in order[:cut])
    test = sorted(dated[j] for j in order[cut:])
    old = [i for i in train if years[i] <= year]  # type: ignore[operator]
    old_items = [catalog.keywords[i] for i in old]
    all_items = [catalog.keywords[i] for i in train]
    test_items = [catalog.keywords[i] for i in test]
    runs: list[dict[str, Any]] = []
    for seed in seeds:
        params = {"random_state": seed, "device": "cpu", **options}
        row: dict[str, Any] = {"seed": seed}
        start = time.perf_counter()
        first = TopicModel(n_topics, **params).fit(old_items)
        row["first"] = {
            "recall_at_10": _recall(first, test_items, split_seed),
            "epochs": first.n_epochs_,
            "train_seconds": time.perf_counter() - start,
        }
        stored = first.transform(old_items)
        for name, parent in (("child", first), ("scratch", None)):
            start = time.perf_counter()
            model = TopicModel(n_topics, **params).fit(all_items, parent=parent)
            seconds = time.perf_counter() - start
            lineage = model.lineage_ if parent is not None else model.align_to(first)
            row[name] = {
                "kept_share": lineage.kept / n_topics,
                "similarity": lineage.similarity,
                "stored_cosine": stored_cosine(stored, model.transform(old_items)),
                "recall_at_10": _recall(model, test_items, split_seed),
                "epochs": model.n_epochs_,
                "train_seconds": seconds,
            }
        runs.append(row)
        if progress:
            c, s = row["child"], row["scratch"]
            print(
                f"seed {seed}: kept {c['kept_share']:.2f} vs {s['kept_share']:.2f}, stored "
                f"cosine {c['stored_cosine']:.3f} vs {s['stored_cosine']:.3f}, recall@10 "
                f"{c['recall_at_10']:.4f} vs {s['recall_at_10']:.4f} (child vs scratch)",
                file=sys.stderr,
                flush=True,
            )
    summary = {
        name: {
            figure: _mean_std([r[name][figure] for r in runs])
            for figure in FIGURES
            if figure in runs[0][name]
        }
        for name in ("first", "child", "scratch")
    }
    return {
        "setting": {
            "year": year,
            "n_topics": n_topics,
            "seeds": list(seeds),
            "split_seed": split_seed,
            "kept_threshold": KEPT_SIMILARITY,
            "items_first": len(old),
            "items_all": len(train),
            "items_test": len(test),
            "options": options,
        },
        "summary": summary,
        "runs": runs,
    }


def _mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def report_markdown(result: dict[str, Any], command: str) -> str:
    s, m = result["setting"], result["summary"]
    lines = [
        "# Topic continuity: the year-split experiment",
        "",
        f"`{command}`",
        "",
        f"Version 1: {s['items_first']} training items released up to {s['year']}; version 2: "
        f"all {s['items_all']} training items; recall@10 on {s['items_test']} held-out items. "
        f"{s['n_topics']} topics, seeds {', '.join(map(str, s['seeds']))}; a topic is kept at "
        f"similarity >= {s['kept_threshold']}. Mean ± std over seeds.",
        "",
        "| version 2 | topics kept | stored-vector cosine | recall@10 | epochs | train s |",
        "|---|---|---|---|---|---|",
    ]

    def cell(name: str, figure: str, digits: int) -> str:
        v = m[name].get(figure)
        return "-" if v is None else f"{v['mean']:.{digits}f} ± {v['std']:.{digits}f}"

    for name, title in (("child", "child of version 1"), ("scratch", "from scratch, aligned")):
        lines.append(
            f"| {title} | {cell(name, 'kept_share', 2)} | {cell(name, 'stored_cosine', 3)} | "
            f"{cell(name, 'recall_at_10', 4)} | {cell(name, 'epochs', 0)} | "
            f"{cell(name, 'train_seconds', 0)} |"
        )
    lines.append(
        f"| (version 1 itself) | - | - | {cell('first', 'recall_at_10', 4)} | "
        f"{cell('first', 'epochs', 0)} | {cell('first', 'train_seconds', 0)} |"
    )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", required=True, help="TMDB-style catalog with release_date")
    parser.add_argument("--year", type=int, default=2010, help="version 1: released up to it")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--topics", type=int, default=DEFAULTS.n_topics)
    parser.add_argument("--max-epochs", type=int, default=DEFAULTS.max_epochs)
    parser.add_argument("--output", required=True, help="folder for continuity.md and .json")
    args = parser.parse_args(argv)
    catalog = read_catalog(args.input)
    dates = release_years(args.input)
    years = [dates.get(i) for i in catalog.ids]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    result = run_experiment(
        catalog,
        years,
        year=args.year,
        seeds=seeds,
        n_topics=args.topics,
        max_epochs=args.max_epochs,
    )
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m lab.continuity " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    (out / "continuity.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    (out / "continuity.md").write_text(report_markdown(result, command), encoding="utf-8")
    print(report_markdown(result, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
