"""Metrics for projections and topics. Pure functions of arrays; no models inside."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp


def hide_one_keyword(X: sp.csr_matrix, seed: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """For every item with >= 2 keywords, hide one at random.

    Returns (visible, rows, hidden): `visible` has shape (len(rows), n_keywords) and holds the
    remaining keywords of the items `rows`; `hidden[i]` is the keyword id hidden from row i.
    """
    X = sp.csr_matrix(X)
    lengths = np.diff(X.indptr)
    rows = np.flatnonzero(lengths >= 2)
    rng = np.random.default_rng(seed)
    pick = X.indptr[rows] + (rng.random(len(rows)) * lengths[rows]).astype(np.int64)
    hidden = X.indices[pick].astype(np.int64)
    keep = np.ones(X.nnz, dtype=bool)
    keep[pick] = False
    V = X.copy()
    V.data = np.where(keep, V.data, 0).astype(V.data.dtype)
    V.eliminate_zeros()
    return V[rows], rows, hidden


def ranking_metrics(
    scores: np.ndarray, visible: sp.csr_matrix, hidden: np.ndarray, k: int = 10
) -> tuple[float, float]:
    """Recall@k and MRR of the hidden keyword, ranking all keywords not in the input.

    scores : array of shape (n_items, n_keywords)
    """
    scores = np.array(scores, dtype=np.float64, copy=True)
    rows = np.repeat(np.arange(visible.shape[0]), np.diff(visible.indptr))
    scores[rows, visible.indices] = -np.inf  # inputs are not candidates
    target = scores[np.arange(len(hidden)), hidden]
    # Rank = 1 + the number of candidates scoring strictly higher (ties count in our favour
    # for no model: a constant score gives the worst rank below, not the best).
    higher = (scores > target[:, None]).sum(axis=1)
    ties = np.maximum((scores == target[:, None]).sum(axis=1) - 1, 0)  # a NaN equals nothing
    rank = 1 + higher + ties
    return float((rank <= k).mean()), float((1.0 / rank).mean())


def npmi(top: np.ndarray, X: sp.csr_matrix) -> float:
    """Mean NPMI over the keyword pairs of each topic's top keywords.

    top : int array of shape (n_topics, n) of keyword ids
    X   : the corpus as a (n_items, n_keywords) matrix, presence counted per item
    """
    B = sp.csr_matrix(X, copy=True)
    B.data = np.ones_like(B.data)
    n_docs = B.shape[0]
    B = B.tocsc()
    values = []
    iu = np.triu_indices(top.shape[1], k=1)
    for row in top:
        sub = B[:, row]
        co = (sub.T @ sub).toarray().astype(np.float64)  # (n, n)
        p = np.diag(co) / n_docs
        pij = co[iu] / n_docs
        pi, pj = p[iu[0]], p[iu[1]]
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.log(pij / (pi * pj)) / -np.log(pij)
        v = np.where(pij > 0, v, -1.0)
        v = np.where(pij >= 1.0, 1.0, v)  # two keywords on every item
        values.append(v.mean())
    return float(np.mean(values))


def diversity(top: np.ndarray) -> float:
    """Share of distinct keywords among all topics' top keywords."""
    return float(len(np.unique(top)) / top.size)


def sparsity(Y: np.ndarray, lengths: np.ndarray) -> dict[str, float]:
    """Zero fraction, active topics per item (overall and for 1-2 keyword items), dead topics.

    A topic is active on an item when its activation is positive.
    """
    active = Y > 0
    short = (lengths >= 1) & (lengths <= 2)
    out = {
        "zero_fraction": float((Y == 0).mean()),
        "active_topics": float(active.sum(axis=1).mean()),
        "dead_topics": float((~active.any(axis=0)).sum()),
    }
    if short.any():
        out["active_topics_short"] = float(active[short].sum(axis=1).mean())
    return out


def genre_map(
    Z_train: np.ndarray | sp.spmatrix,
    genres_train: Sequence[Sequence[str]],
    Z_test: np.ndarray | sp.spmatrix,
    genres_test: Sequence[Sequence[str]],
    seed: int = 0,
) -> float:
    """Mean average precision of one logistic regression per genre, trained on projections."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import MultiLabelBinarizer, StandardScaler

    mlb = MultiLabelBinarizer()
    Y_train = mlb.fit_transform(genres_train)
    Y_test = MultiLabelBinarizer(classes=mlb.classes_).fit_transform(genres_test)
    usable = (
        (Y_train.sum(axis=0) > 0) & (Y_train.sum(axis=0) < len(Y_train)) & (Y_test.sum(axis=0) > 0)
    )
    if not usable.any():
        return float("nan")
    classifier = OneVsRestClassifier(LogisticRegression(max_iter=2000, random_state=seed))
    # Projections differ in scale from model to model, so they are standardised; a raw 0/1 bag
    # of keywords is already on one scale, and scaling would inflate its rarest keywords.
    probe = classifier if sp.issparse(Z_train) else make_pipeline(StandardScaler(), classifier)
    probe.fit(Z_train, Y_train[:, usable])
    scores = probe.decision_function(Z_test)
    return float(average_precision_score(Y_test[:, usable], scores, average="macro"))


def planted_topic_scores(
    Y: np.ndarray,
    components: np.ndarray,
    planted_keywords: np.ndarray,
    item_topics: Sequence[Sequence[int]],
) -> dict[str, float]:
    """Precision, recall and F1 of the active topics against the planted ones (micro-averaged).

    Learned topics are matched one-to-one to planted topics by the cosine similarity of their
    keyword weights (Hungarian matching). An active learned topic with no planted match counts
    as a false positive.

    Y                 : (n_items, n_topics) activations
    components        : (n_topics, n_keywords) learned topic weights
    planted_keywords  : (n_planted, n_keywords) 0/1 membership of each planted topic
    """
    from scipy.optimize import linear_sum_assignment

    A = components / np.maximum(np.linalg.norm(components, axis=1, keepdims=True), 1e-12)
    P = planted_keywords / np.maximum(
        np.linalg.norm(planted_keywords, axis=1, keepdims=True), 1e-12
    )
    learned, planted = linear_sum_assignment(-(A @ P.T))
    mapping = np.full(components.shape[0], -1)
    mapping[learned] = planted
    tp = fp = fn = 0
    for y, truth in zip(Y > 0, item_topics, strict=True):
        predicted = mapping[np.flatnonzero(y)]
        hits = len(set(predicted[predicted >= 0].tolist()) & set(truth))
        tp += hits
        fp += len(predicted) - hits
        fn += len(truth) - hits
    precision = tp / max(tp + fp, 1)
    recall = tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-12)
    return {"topic_precision": precision, "topic_recall": recall, "topic_f1": f1}
