"""The evaluation harness: our projector with each activation, beside scikit-learn NMF and LDA.

Every model is trained on the same training items (a fixed 80/20 split by item) and scored on the
same test items with the functions of `models.scoring`. Results over several seeds are reported as
mean and standard deviation; metrics that do not apply to a model are left out.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from lab import scoring
from topicproj.models.core.artifacts import replace_file
from topicproj.models.core.options import ACTIVATIONS, DEFAULTS
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.core.vocabulary import Vocabulary
from topicproj.models.data.catalog import Catalog

METRICS = (
    "recall_at_10",
    "mrr",
    "genre_map",
    "npmi",
    "diversity",
    "zero_fraction",
    "active_topics",
    "active_topics_short",
    "dead_topics",
    "topic_precision",
    "topic_recall",
    "topic_f1",
    "train_seconds",
    "items_per_second",
)


@dataclass
class EvaluationData:
    """The split, mapped once and shared by every model."""

    vocabulary: Vocabulary
    X_train: sp.csr_matrix  # (n_train, n_keywords), 0/1
    X_test: sp.csr_matrix  # (n_test, n_keywords), 0/1
    X_all: sp.csr_matrix  # the whole corpus, for NPMI
    test_keywords: list[list[str]]
    genres_train: list[list[str]] | None
    genres_test: list[list[str]] | None
    visible: sp.csr_matrix  # test items with >= 2 keywords, one hidden
    hidden: np.ndarray
    planted: np.ndarray | None = None  # (n_planted, n_keywords)
    test_topics: list[list[int]] | None = None

    @classmethod
    def build(
        cls,
        catalog: Catalog,
        *,
        min_df: int,
        split_seed: int,
        max_df: float = 1.0,
        stop_keywords: Sequence[str] = (),
        planted_keywords: Sequence[Sequence[str]] | None = None,
        item_topics: Sequence[Sequence[int]] | None = None,
    ) -> EvaluationData:
        n = len(catalog)
        if n >= 10:
            # Items with no keyword on `min_df` items carry nothing any model could use; they
            # would only add identical zero rows to every model's scores.
            prelim = Vocabulary.fit(
                catalog.keywords, min_df=min_df, max_df=max_df, stop_keywords=stop_keywords
            )
            usable = np.flatnonzero(prelim.map_batch(catalog.keywords).known > 0)
            catalog = catalog.subset(usable)
            item_topics = [item_topics[r] for r in usable] if item_topics else None
            n = len(catalog)
        if n < 10:
            raise ValueError(f"evaluation needs at least 10 items, got {n}")
        order = np.random.default_rng(split_seed).permutation(n)
        cut = round(n * 0.8)
        train_rows, test_rows = np.sort(order[:cut]), np.sort(order[cut:])
        train, test = catalog.subset(train_rows), catalog.subset(test_rows)
        vocab = Vocabulary.fit(
            train.keywords, min_df=min_df, max_df=max_df, stop_keywords=stop_keywords
        )
        if len(vocab) == 0:
            raise ValueError(f"no keyword occurs on {min_df} training items; lower min_df")

        def binary(items: Sequence[Sequence[str]]) -> sp.csr_matrix:
            X = vocab.map_batch(items).to_csr(len(vocab))
            X.sum_duplicates()
            X.data = np.ones_like(X.data)
            return X

        X_test = binary(test.keywords)
        visible, _, hidden = scoring.hide_one_keyword(X_test, split_seed)
        planted = None
        if planted_keywords is not None:
            planted = np.zeros((len(planted_keywords), len(vocab)))
            for t, kws in enumerate(planted_keywords):
                ids = [vocab.id(k) for k in kws]
                planted[t, [i for i in ids if i is not None]] = 1.0
        return cls(
            vocabulary=vocab,
            X_train=binary(train.keywords),
            X_test=X_test,
            X_all=binary(catalog.keywords),
            test_keywords=test.keywords,
            genres_train=train.genres,
            genres_test=test.genres,
            visible=visible,
            hidden=hidden,
            planted=planted,
            test_topics=[list(item_topics[r]) for r in test_rows] if item_topics else None,
        )

    def restrict_test(self, rows: np.ndarray, seed: int) -> EvaluationData:
        """The same split with only the test items `rows`, for scoring a subset (short items).

        Training data is unchanged, so models fitted on `self` score on the result as they are.
        The hidden keywords are drawn afresh for the subset with `seed`.
        """
        X_test = self.X_test[rows]
        visible, _, hidden = scoring.hide_one_keyword(X_test, seed)
        return EvaluationData(
            vocabulary=self.vocabulary,
            X_train=self.X_train,
            X_test=X_test,
            X_all=self.X_all,
            test_keywords=[self.test_keywords[r] for r in rows],
            genres_train=self.genres_train,
            genres_test=[self.genres_test[r] for r in rows] if self.genres_test else None,
            visible=visible,
            hidden=hidden,
            planted=self.planted,
            test_topics=[self.test_topics[r] for r in rows] if self.test_topics else None,
        )


@dataclass
class Fitted:
    """What the harness needs from a trained model, whatever its kind."""

    project: Callable[[sp.csr_matrix], np.ndarray]  # (n, n_keywords) -> (n, topics)
    scores: Callable[[sp.csr_matrix], np.ndarray]  # (n, n_keywords) -> (n, n_keywords)
    components: np.ndarray  # (topics, n_keywords)
    train_seconds: float
    project_keywords: Callable[[list[list[str]]], np.ndarray]  # the whole path, for speed
    model: Any = None  # the trained estimator, for studies that look inside it


@dataclass
class Candidate:
    name: str
    fit: Callable[[EvaluationData, int], Fitted]
    activation: str | None = None
    results: list[dict[str, float]] = field(default_factory=list)


def projector_candidate(
    activation: str, n_topics: int, min_df: int, *, device: str = "cpu", **params: Any
) -> Candidate:
    def fit(data: EvaluationData, seed: int) -> Fitted:
        train_items = [
            [data.vocabulary.keywords[j] for j in data.X_train.indices[a:b]]
            for a, b in zip(data.X_train.indptr[:-1], data.X_train.indptr[1:], strict=True)
        ]
        model = TopicModel(
            n_topics, activation=activation, min_df=1, random_state=seed, device=device, **params
        ).fit(train_items)
        if device != "cpu":  # trained on an accelerator, scored here
            model.projector_.to("cpu")
            model.decoder_.to("cpu")
        # Same keyword ids as the shared split: min_df was already applied to train_items.
        remap = np.array([model.vocabulary_.id(k) for k in data.vocabulary.keywords])

        def to_model(X: sp.csr_matrix) -> sp.csr_matrix:
            return sp.csr_matrix(
                (X.data, remap[X.indices], X.indptr), shape=(X.shape[0], len(remap))
            )

        return Fitted(
            project=lambda X: model.transform_csr(to_model(X)),
            scores=lambda X: model.keyword_scores(to_model(X))[:, remap],
            components=model.components_[:, remap],
            train_seconds=model.train_seconds_,
            project_keywords=model.transform,
            model=model,
        )

    return Candidate(f"projector ({activation})", fit, activation=activation)


def nmf_candidate(n_topics: int) -> Candidate:
    def fit(data: EvaluationData, seed: int) -> Fitted:
        from sklearn.decomposition import NMF

        start = time.perf_counter()
        nmf = NMF(n_components=n_topics, init="nndsvda", max_iter=300, random_state=seed)
        nmf.fit(data.X_train)
        seconds = time.perf_counter() - start
        return Fitted(
            project=nmf.transform,
            scores=lambda X: nmf.transform(X) @ nmf.components_,
            components=nmf.components_,
            train_seconds=seconds,
            project_keywords=lambda items: nmf.transform(_vectorise(data.vocabulary, items)),
            model=nmf,
        )

    return Candidate("scikit-learn NMF (Frobenius)", fit)


def lda_candidate(n_topics: int) -> Candidate:
    def fit(data: EvaluationData, seed: int) -> Fitted:
        from sklearn.decomposition import LatentDirichletAllocation

        start = time.perf_counter()
        lda = LatentDirichletAllocation(
            n_components=n_topics, learning_method="batch", max_iter=50, random_state=seed
        )
        lda.fit(data.X_train)
        seconds = time.perf_counter() - start
        topic_word = lda.components_ / lda.components_.sum(axis=1, keepdims=True)
        return Fitted(
            project=lda.transform,
            scores=lambda X: lda.transform(X) @ topic_word,
            components=lda.components_,
            train_seconds=seconds,
            project_keywords=lambda items: lda.transform(_vectorise(data.vocabulary, items)),
            model=lda,
        )

    return Candidate("scikit-learn LDA (batch)", fit)


def _vectorise(vocab: Vocabulary, items: list[list[str]]) -> sp.csr_matrix:
    return vocab.map_batch(items).to_csr(len(vocab))


def score(
    fitted: Fitted, data: EvaluationData, seed: int, *, throughput: bool = True
) -> dict[str, float]:
    """Every metric that applies, for one trained model (`throughput=False`: no timing)."""
    out: dict[str, float] = {}
    recall, mrr = scoring.ranking_metrics(fitted.scores(data.visible), data.visible, data.hidden)
    out["recall_at_10"], out["mrr"] = recall, mrr
    Y_test = np.asarray(fitted.project(data.X_test))
    if data.genres_train is not None and data.genres_test is not None:
        out["genre_map"] = scoring.genre_map(
            np.asarray(fitted.project(data.X_train)),
            data.genres_train,
            Y_test,
            data.genres_test,
            seed,
        )
    top = np.argsort(-fitted.components, axis=1, kind="stable")[:, :10]
    out["npmi"] = scoring.npmi(top, data.X_all)
    out["diversity"] = scoring.diversity(top)
    out |= scoring.sparsity(Y_test, np.diff(data.X_test.indptr))
    if data.planted is not None and data.test_topics is not None:
        out |= scoring.planted_topic_scores(
            Y_test, fitted.components, data.planted, data.test_topics
        )
    out["train_seconds"] = fitted.train_seconds
    if throughput:
        out["items_per_second"] = _throughput(fitted.project_keywords, data.test_keywords)
    return out


def _throughput(project: Callable[[list[list[str]]], np.ndarray], items: list[list[str]]) -> float:
    """Items per second of the whole path, keyword strings in, projections out."""
    project(items)  # warm up
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < 0.3:
        project(items)
        n += len(items)
    return n / elapsed


def baseline_rows(data: EvaluationData) -> list[dict[str, Any]]:
    """Reference rows that need no training: keyword popularity, and the raw bag of keywords."""
    popularity = np.tile(
        data.vocabulary.document_frequency.astype(np.float64), (data.visible.shape[0], 1)
    )
    recall, mrr = scoring.ranking_metrics(popularity, data.visible, data.hidden)
    rows: list[dict[str, Any]] = [
        {
            "name": "keyword popularity (no model)",
            "recall_at_10": _single(recall),
            "mrr": _single(mrr),
        }
    ]
    if data.genres_train is not None and data.genres_test is not None:
        raw = scoring.genre_map(data.X_train, data.genres_train, data.X_test, data.genres_test)
        rows.append({"name": "raw bag of keywords (no projection)", "genre_map": _single(raw)})
    return rows


def _single(value: float) -> dict[str, float]:
    return {"mean": float(value), "std": 0.0}


def summarise(results: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for key in METRICS:
        values = [r[key] for r in results if key in r and np.isfinite(r[key])]
        if values:
            out[key] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            }
    return out


def evaluate(
    catalog: Catalog,
    *,
    n_topics: int = DEFAULTS.n_topics,
    activations: Sequence[str] = ACTIVATIONS,
    seeds: Sequence[int] = (0, 1, 2),
    split_seed: int = 0,
    min_df: int = DEFAULTS.min_df,
    max_df: float = DEFAULTS.max_df,
    stop_keywords: Sequence[str] = DEFAULTS.stop_keywords,
    sklearn_baselines: bool = True,
    planted_keywords: Sequence[Sequence[str]] | None = None,
    item_topics: Sequence[Sequence[int]] | None = None,
    progress: bool = True,
    model_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train and score every candidate on one split; the report as a JSON-ready dict."""
    start = time.perf_counter()
    data = EvaluationData.build(
        catalog,
        min_df=min_df,
        split_seed=split_seed,
        max_df=max_df,
        stop_keywords=stop_keywords,
        planted_keywords=planted_keywords,
        item_topics=item_topics,
    )
    candidates = [
        projector_candidate(a, n_topics, min_df, **(model_params or {})) for a in activations
    ]
    if sklearn_baselines:
        candidates += [nmf_candidate(n_topics), lda_candidate(n_topics)]
    runs = [(c, s) for c in candidates for s in seeds]
    bar = _bar(len(runs), progress)
    for candidate, seed in runs:
        if bar is not None:
            bar.set_description(f"{candidate.name} seed {seed}")
        candidate.results.append(score(candidate.fit(data, seed), data, seed))
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    models = baseline_rows(data)
    for c in candidates:
        row: dict[str, Any] = {"name": c.name}
        if c.activation is not None:
            row["activation"] = c.activation
        row["topics"] = n_topics
        row |= summarise(c.results)
        models.append(row)
    return {
        "data": {
            "source": catalog.source,
            "items": len(catalog),
            "usable_items": data.X_train.shape[0] + data.X_test.shape[0],
            "train_items": data.X_train.shape[0],
            "test_items": data.X_test.shape[0],
            "ranked_test_items": len(data.hidden),
            "keywords": len(data.vocabulary),
            "mean_keywords_per_train_item": float(data.X_train.nnz / max(data.X_train.shape[0], 1)),
            "min_df": min_df,
            "max_df": max_df,
            "stop_keywords": len(stop_keywords),
            "split_seed": split_seed,
        },
        "seeds": list(seeds),
        "seconds": time.perf_counter() - start,
        "models": models,
    }


def _bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="model", disable=None)


# -- the report on disk -----------------------------------------------------------------------

# (key, column label, digits) of the per-model tables; a column shows when any row has it.
COLUMNS = (
    ("recall_at_10", "recall@10", 3),
    ("mrr", "MRR", 3),
    ("genre_map", "genre mAP", 3),
    ("npmi", "NPMI", 3),
    ("diversity", "diversity", 2),
    ("zero_fraction", "zeros", 2),
    ("active_topics", "active", 1),
    ("active_topics_short", "active (1-2 kw)", 1),
    ("dead_topics", "dead", 1),
    ("topic_precision", "topic P", 3),
    ("topic_recall", "topic R", 3),
    ("topic_f1", "topic F1", 3),
    ("train_seconds", "train s", 1),
    ("items_per_second", "items/s", 0),
)


def report_markdown(report: dict[str, Any], command: str | None = None) -> str:
    d = report["data"]
    present = [c for c in COLUMNS if any(c[0] in m for m in report["models"])]
    lines = [
        f"Data: `{d['source']}`: {d['items']} items, {d['usable_items']} with a keyword on "
        f">= {d['min_df']} items, {d['train_items']} train / {d['test_items']} "
        f"test (split seed {d['split_seed']}), {d['keywords']} keywords with min-df {d['min_df']}, "
        f"{d['mean_keywords_per_train_item']:.1f} known keywords per train item. "
        f"Seeds {', '.join(map(str, report['seeds']))}; mean ± std. "
        f"{report['seconds']:.0f} s in all.",
        "",
    ]
    if command:
        lines[:0] = [f"Command: `{command}`", ""]
    lines.append("| model | " + " | ".join(c[1] for c in present) + " |")
    lines.append("|---|" + "---|" * len(present))
    for m in report["models"]:
        cells = []
        for key, _, digits in present:
            v = m.get(key)
            if v is None:
                cells.append("-")
            elif v["std"] > 0:
                cells.append(f"{v['mean']:.{digits}f} ± {v['std']:.{digits}f}")
            else:
                cells.append(f"{v['mean']:.{digits}f}")
        lines.append(f"| {m['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], directory: str | Path, command: str | None = None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # Each whole or absent, even when the run is interrupted while writing.
    replace_file(directory / "report.json", json.dumps(report, indent=1) + "\n")
    replace_file(directory / "report.md", report_markdown(report, command))
    return directory
