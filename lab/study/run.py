"""The activation study: where the overlap-aware activation helps, and what it costs.

Six questions, one function each, every one returning plain JSON-ready data:

1. `planted_topics`: active-topic precision, recall and F1 on synthetic catalogs with known
   topics, over a grid of noise-keyword rates and shares of one- and two-keyword items.
2. `real_catalog`: recall@10, MRR, genre mAP, NPMI, diversity and sparsity on a real catalog at
   several topic counts, for every test item and for the items with one or two keywords.
3. `tradeoff`: sparsity against recall@10 as the L1 weight is swept, per activation.
4. `learned_parameters` (in `study_learned`): the per-topic gate parameters the overlap
   activation learned.
5. dead topics: read from the runs of 2 (`dead_topics_table`), per epoch and at the end.
6. `cost` (in `study_cost`): projection items/s of each activation on the CPU, the kernel
   alone.

`run_study` runs all six and checks them against the issue's targets (`targets`);
`report.write_study` writes the tables, plots and raw numbers. Models are trained and scored
with `lab.evaluation`, so every figure here means what it means in
`topicproj evaluate`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import torch

from lab.evaluation import (
    Candidate,
    EvaluationData,
    Fitted,
    lda_candidate,
    nmf_candidate,
    projector_candidate,
    score,
    summarise,
)
from lab.pruning import prune
from topicproj.models.core.options import DEFAULT_L1 as L1_WEIGHT
from topicproj.models.data.catalog import Catalog
from topicproj.models.data.synthetic import make_synthetic_catalog

from .config import StudyConfig
from .cost import cost
from .learned import learned_parameters
from .targets import targets

DEFAULT_L1 = L1_WEIGHT  # the study's protocol: every activation at this L1 weight


Log = Callable[[str], None]


def _stderr_log(start: float) -> Log:
    def log(message: str) -> None:
        minutes, seconds = divmod(int(time.perf_counter() - start), 60)
        print(f"[{minutes:3d}:{seconds:02d}] {message}", file=sys.stderr, flush=True)

    return log


def _candidates(config: StudyConfig, n_topics: int, l1: float = DEFAULT_L1) -> list[Candidate]:
    params = {"max_epochs": config.max_epochs, "l1": l1}
    out = [projector_candidate(a, n_topics, 1, **params) for a in config.activations]
    if config.sklearn_baselines:
        out += [nmf_candidate(n_topics), lda_candidate(n_topics)]
    return out


def short_rows(data: EvaluationData) -> np.ndarray:
    """Test items with one or two known keywords."""
    lengths = np.diff(data.X_test.indptr)
    return np.flatnonzero((lengths >= 1) & (lengths <= 2))


def _run(
    candidate: Candidate,
    data: EvaluationData,
    short: EvaluationData | None,
    seed: int,
    *,
    throughput: bool,
) -> tuple[dict[str, Any], Fitted]:
    """Fit one candidate with one seed; its metrics on all test items and on the short ones."""
    fitted = candidate.fit(data, seed)
    record: dict[str, Any] = {
        "model": candidate.name,
        "activation": candidate.activation,
        "seed": seed,
        "all": score(fitted, data, seed, throughput=throughput),
    }
    if short is not None and short.X_test.shape[0] > 0:
        record["short"] = score(fitted, short, seed, throughput=False)
    history = getattr(getattr(fitted.model, "train_result_", None), "history", None)
    if history is not None:
        record["epochs"] = len(history)
        record["best_epoch"] = fitted.model.train_result_.best_epoch
        record["dead_history"] = [int(h["dead_topics"]) for h in history]
    return record, fitted


def _summary_rows(
    records: list[dict[str, Any]], key: str = "all", **match: Any
) -> list[dict[str, Any]]:
    """Mean ± std per model over seeds, for the records that match every `match` item."""
    chosen = [r for r in records if all(r.get(k) == v for k, v in match.items())]
    names = list(dict.fromkeys(r["model"] for r in chosen))
    rows = []
    for name in names:
        runs = [r for r in chosen if r["model"] == name and key in r]
        if runs:
            row = {"name": name, "activation": runs[0]["activation"], "runs": len(runs)}
            rows.append(row | summarise([r[key] for r in runs]))
    return rows


# -- 1. planted topics --------------------------------------------------------------------------


def planted_cells(config: StudyConfig) -> list[tuple[float, float]]:
    """(noise rate, short fraction) of every synthetic catalog in the study, without repeats."""
    cells = [(n, config.base_short_fraction) for n in config.noise_rates]
    cells += [(config.base_noise_rate, s) for s in config.short_fractions]
    return list(dict.fromkeys(cells))


def planted_topics(config: StudyConfig, log: Log) -> dict[str, Any]:
    records = []
    for noise, short_fraction in planted_cells(config):
        synthetic = make_synthetic_catalog(
            n_items=config.planted_items,
            n_topics=config.planted_topics,
            keywords_per_topic=config.planted_keywords_per_topic,
            n_filler_keywords=config.planted_filler_keywords,
            noise_rate=noise,
            short_fraction=short_fraction,
            seed=0,
        )
        data = EvaluationData.build(
            synthetic.catalog,
            min_df=config.planted_min_df,
            split_seed=0,
            planted_keywords=synthetic.topic_keywords,
            item_topics=synthetic.item_topics,
        )
        short = data.restrict_test(short_rows(data), seed=0)
        for candidate in _candidates(config, config.planted_topics):
            for seed in config.planted_seeds:
                t = time.perf_counter()
                record, fitted = _run(candidate, data, short, seed, throughput=False)
                record["pruned"] = _pruned_planted(fitted, data, config.zero_levels)
                records.append(record | {"noise_rate": noise, "short_fraction": short_fraction})
                log(
                    f"planted noise {noise:.2f} short {short_fraction:.2f}: {candidate.name} "
                    f"seed {seed}, F1 {record['all']['topic_f1']:.3f} "
                    f"({time.perf_counter() - t:.1f} s)"
                )
    cells = [
        {
            "noise_rate": noise,
            "short_fraction": short_fraction,
            "models": _summary_rows(records, noise_rate=noise, short_fraction=short_fraction),
            "models_short": _summary_rows(
                records, "short", noise_rate=noise, short_fraction=short_fraction
            ),
            "pruned": _pruned_summary(
                [
                    r
                    for r in records
                    if r["noise_rate"] == noise and r["short_fraction"] == short_fraction
                ]
            ),
        }
        for noise, short_fraction in planted_cells(config)
    ]
    return {"cells": cells, "runs": records}


def _pruned_planted(
    fitted: Fitted, data: EvaluationData, levels: Sequence[float]
) -> list[dict[str, float]]:
    """Active-topic F1 when activations are pruned to each share of zeros: every model
    compared with the others at equal sparsity, not at the sparsity its training chose."""
    from lab import scoring

    Y_train = np.asarray(fitted.project(data.X_train))
    Y_test = np.asarray(fitted.project(data.X_test))
    natural = float((Y_test == 0).mean())
    out = []
    for level in levels:
        if level <= natural:
            continue  # already this sparse as trained
        Y = prune(Y_test, Y_train, level)
        f1 = scoring.planted_topic_scores(Y, fitted.components, data.planted, data.test_topics)
        out.append(
            {"level": level, "zero_fraction": float((Y == 0).mean()), "topic_f1": f1["topic_f1"]}
        )
    return out


def _pruned_summary(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for name in dict.fromkeys(r["model"] for r in records):
        runs = [r for r in records if r["model"] == name]
        levels = sorted({p["level"] for r in runs for p in r["pruned"]})
        by_level = {}
        for level in levels:
            points = [p for r in runs for p in r["pruned"] if p["level"] == level]
            by_level[f"{level:.2f}"] = summarise_values(
                zero_fraction=[p["zero_fraction"] for p in points],
                topic_f1=[p["topic_f1"] for p in points],
            )
        rows.append({"name": name, "activation": runs[0]["activation"], "levels": by_level})
    return rows


# -- 2. real catalog (and the runs that 3, 4 and 5 reuse) ---------------------------------------


def real_catalog(
    config: StudyConfig, data: EvaluationData, log: Log
) -> tuple[dict[str, Any], dict[tuple[int, str, int], Fitted]]:
    """Every candidate at every topic count and seed. Also returns the fitted projectors."""
    short = data.restrict_test(short_rows(data), seed=0)
    records, fitted_models = [], {}
    for n_topics in config.topics:
        for candidate in _candidates(config, n_topics):
            for seed in config.seeds:
                t = time.perf_counter()
                record, fitted = _run(candidate, data, short, seed, throughput=True)
                records.append(record | {"topics": n_topics, "l1": DEFAULT_L1})
                if candidate.activation is not None:
                    fitted_models[(n_topics, candidate.activation, seed)] = fitted
                m = record["all"]
                log(
                    f"real {n_topics} topics: {candidate.name} seed {seed}, recall@10 "
                    f"{m['recall_at_10']:.3f}, zeros {m['zero_fraction']:.2f} "
                    f"({time.perf_counter() - t:.1f} s)"
                )
    by_topics = [
        {
            "topics": k,
            "models": _summary_rows(records, topics=k),
            "models_short": _summary_rows(records, "short", topics=k),
        }
        for k in config.topics
    ]
    out = {
        "short_test_items": int(short.X_test.shape[0]),
        "short_ranked_items": len(short.hidden),
        "by_topics": by_topics,
        "runs": records,
    }
    return out, fitted_models


# -- 3. trade-off -------------------------------------------------------------------------------


def tradeoff(
    config: StudyConfig, data: EvaluationData, real_runs: list[dict[str, Any]], log: Log
) -> dict[str, Any]:
    """Zero fraction and recall@10 per activation and L1 weight, at the first topic count."""
    n_topics = config.topics[0]
    records = []
    for activation in config.tradeoff_activations:
        for l1 in config.l1_values:
            for seed in config.tradeoff_seeds:
                reused = [
                    r
                    for r in real_runs
                    if r["activation"] == activation
                    and r["topics"] == n_topics
                    and r["seed"] == seed
                    and np.isclose(l1, r["l1"])
                ]
                if reused:
                    records.append(reused[0] | {"reused": True})
                    continue
                candidate = projector_candidate(
                    activation, n_topics, 1, max_epochs=config.max_epochs, l1=l1
                )
                t = time.perf_counter()
                record, _ = _run(candidate, data, None, seed, throughput=False)
                records.append(record | {"topics": n_topics, "l1": l1})
                log(
                    f"trade-off {activation} l1 {l1:g} seed {seed}: zeros "
                    f"{record['all']['zero_fraction']:.2f}, recall@10 "
                    f"{record['all']['recall_at_10']:.3f} ({time.perf_counter() - t:.1f} s)"
                )
    points = []
    for activation in config.tradeoff_activations:
        for l1 in config.l1_values:
            runs = [r for r in records if r["activation"] == activation and r["l1"] == l1]
            points.append(
                {"activation": activation, "l1": l1, "runs": len(runs)}
                | summarise([r["all"] for r in runs])
            )
    return {"topics": n_topics, "points": points, "frontier": pareto_frontier(points)}


@torch.no_grad()
def threshold_curve(
    fitted: dict[tuple[int, str, int], Fitted],
    data: EvaluationData,
    n_topics: int,
    levels: Sequence[float],
) -> list[dict[str, Any]]:
    """Recall@10 of every projector of part 2 when activations at or below a threshold t are
    set to zero, t chosen per model so that a share `level` of its activations on the training
    items is zero (test labels play no part). Each point: activation, target level, mean ± std
    over seeds of the test zero fraction and recall@10. The first point of each activation,
    level None, is the model as trained."""
    from lab import scoring

    records = []
    for (k, activation, seed), f in sorted(fitted.items()):
        if k != n_topics:
            continue
        model = f.model
        remap = np.array([model.vocabulary_.id(w) for w in data.vocabulary.keywords])
        Y_train = np.asarray(f.project(data.X_train))
        Y_test = np.asarray(f.project(data.X_test))
        Y_visible = np.asarray(f.project(data.visible))
        natural = float((Y_test == 0).mean())
        for level in (None, *levels):
            if level is not None and level <= natural:
                continue  # already this sparse as trained
            visible, test = (
                (Y_visible, Y_test)
                if level is None
                else (prune(Y_visible, Y_train, level), prune(Y_test, Y_train, level))
            )
            y = torch.from_numpy(visible.astype(np.float32))
            scores = model.decoder_(y).numpy()[:, remap]
            recall, _ = scoring.ranking_metrics(scores, data.visible, data.hidden)
            records.append(
                {
                    "activation": activation,
                    "level": level,
                    "seed": seed,
                    "zero_fraction": float((test == 0).mean()),
                    "recall_at_10": recall,
                }
            )
    points = []
    for activation in dict.fromkeys(r["activation"] for r in records):
        for level in dict.fromkeys(r["level"] for r in records if r["activation"] == activation):
            runs = [r for r in records if r["activation"] == activation and r["level"] == level]
            points.append(
                {"activation": activation, "level": level, "runs": len(runs)}
                | summarise_values(
                    zero_fraction=[r["zero_fraction"] for r in runs],
                    recall_at_10=[r["recall_at_10"] for r in runs],
                )
            )
    return points


def pareto_frontier(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points no other point beats on both zero fraction and recall@10 (means).

    Sorted by zero fraction; each names its activation and L1 weight.
    """

    def key(p: dict[str, Any]) -> tuple[float, float]:
        return p["zero_fraction"]["mean"], p["recall_at_10"]["mean"]

    front = []
    for p in points:
        z, r = key(p)
        beaten = any(
            key(q)[0] >= z and key(q)[1] >= r and key(q) != (z, r) for q in points if q is not p
        )
        if not beaten:
            front.append({"activation": p["activation"], "l1": p["l1"], "zeros": z, "recall": r})
    return sorted(front, key=lambda f: f["zeros"])


# -- 5. dead topics -------------------------------------------------------------------------------


def dead_topics_table(real_runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per topic count and projector: dead topics at the start and end of training (validation
    items), the most at any epoch, and at the end on the test items."""
    rows = []
    keys = dict.fromkeys((r["topics"], r["model"]) for r in real_runs if "dead_history" in r)
    for n_topics, name in keys:
        runs = [r for r in real_runs if r["topics"] == n_topics and r["model"] == name]
        series = [r["dead_history"] for r in runs]
        # Early stopping keeps the weights of the best epoch (the last, if none improved).
        kept = [
            s[r["best_epoch"] - 1] if r["best_epoch"] else s[-1]
            for s, r in zip(series, runs, strict=True)
        ]
        rows.append(
            {"name": name, "topics": n_topics, "activation": runs[0]["activation"]}
            | summarise_values(
                first_epoch=[s[0] for s in series],
                most=[max(s) for s in series],
                kept_epoch=kept,
                test=[r["all"]["dead_topics"] for r in runs],
            )
        )
    return rows


def summarise_values(**columns: Sequence[float]) -> dict[str, dict[str, float]]:
    return {
        k: {
            "mean": float(np.mean(v)),
            "std": float(np.std(v, ddof=1)) if len(v) > 1 else 0.0,
        }
        for k, v in columns.items()
        if len(v)
    }


# -- the whole study ----------------------------------------------------------------------------


def run_study(
    config: StudyConfig,
    catalog: Catalog | None = None,
    *,
    progress: bool = True,
) -> dict[str, Any]:
    """All six parts. Without `catalog`, parts 2 to 6 run on the base synthetic catalog."""
    start = time.perf_counter()
    log = _stderr_log(start) if progress else (lambda message: None)
    out: dict[str, Any] = {"config": asdict(config)}
    out["planted"] = planted_topics(config, log)
    if catalog is None:
        catalog = make_synthetic_catalog(
            n_items=config.planted_items,
            n_topics=config.planted_topics,
            keywords_per_topic=config.planted_keywords_per_topic,
            n_filler_keywords=config.planted_filler_keywords,
            noise_rate=config.base_noise_rate,
            short_fraction=config.base_short_fraction,
        ).catalog
    data = EvaluationData.build(catalog, min_df=config.min_df, split_seed=0)
    out["data"] = {
        "source": catalog.source,
        "items": len(catalog),
        "train_items": data.X_train.shape[0],
        "test_items": data.X_test.shape[0],
        "keywords": len(data.vocabulary),
        "min_df": config.min_df,
    }
    out["real"], fitted = real_catalog(config, data, log)
    out["tradeoff"] = tradeoff(config, data, out["real"]["runs"], log)
    log("threshold sweep")
    out["tradeoff"]["threshold"] = threshold_curve(
        fitted, data, config.topics[0], config.zero_levels
    )
    out["learned"] = learned_parameters(fitted, data, config.topics[0])
    out["dead"] = dead_topics_table(out["real"]["runs"])
    log("timing the kernels")
    out["cost"] = cost(config, fitted, data)
    out["targets"] = targets(out, config)
    out["seconds"] = time.perf_counter() - start
    return out


def with_overrides(config: StudyConfig, **overrides: Any) -> StudyConfig:
    """`config` with the given fields replaced, ignoring those left as None."""
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})
