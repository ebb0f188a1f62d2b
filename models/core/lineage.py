"""Topics that keep their meaning from one version to the next.

A child version is trained from its parent: its topics start from the parent's (`warm_start`),
and once trained they are renumbered so that topic k of the child is the best match of topic k
of the parent (`align`: an assignment on the topics' keyword weights). Each child topic records
its similarity to the parent topic it took the number of; a topic below the threshold is new,
whatever its number. `Lineage` is what a model directory keeps of this.

Similarity is the cosine of two topics' keyword weights over the union of both vocabularies
(a keyword one side lacks weighs 0 there). Weights are non-negative, so it lies in [0, 1].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

# A topic whose keyword weights have a cosine of at least this with its parent topic's kept
# its meaning. Stated before any experiment: at 0.5 the two weight vectors share more than
# half their direction, which for sparse keyword weights means the same leading keywords.
KEPT_SIMILARITY = 0.5


@dataclass(frozen=True)
class Lineage:
    """A version's parent and, per topic, how close it stayed to the parent topic."""

    parent: str | None  # the parent's version, None when it was never saved
    similarity: list[float]  # per topic of this version, cosine to the same-numbered parent topic
    threshold: float = KEPT_SIMILARITY
    keywords_added: int = 0  # keywords the parent did not have
    keywords_dropped: int = 0  # parent keywords this version no longer has
    # Topics grown on top of the parent's (`fit(..., add_topics=K)`): the last K, new whatever
    # their similarity, which is then to the closest parent topic of any number.
    added_topics: int = 0
    new: list[bool] = field(init=False)

    def __post_init__(self) -> None:
        first_added = len(self.similarity) - self.added_topics
        object.__setattr__(
            self,
            "new",
            [s < self.threshold or k >= first_added for k, s in enumerate(self.similarity)],
        )

    @property
    def kept(self) -> int:
        return sum(not n for n in self.new)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["new"]  # derived from similarity and threshold
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lineage:
        return cls(
            parent=data.get("parent"),
            similarity=[float(s) for s in data["similarity"]],
            threshold=float(data.get("threshold", KEPT_SIMILARITY)),
            keywords_added=int(data.get("keywords_added", 0)),
            keywords_dropped=int(data.get("keywords_dropped", 0)),
            added_topics=int(data.get("added_topics", 0)),
        )


def on_keywords(W: np.ndarray, keywords: list[str], target: list[str]) -> np.ndarray:
    """Topic weights W (topics, len(keywords)) laid out over `target`; 0 where absent."""
    index = {k: i for i, k in enumerate(keywords)}
    out = np.zeros((W.shape[0], len(target)), dtype=np.float64)
    cols = [(j, index[k]) for j, k in enumerate(target) if k in index]
    if cols:
        dst, src = map(list, zip(*cols, strict=True))
        out[:, dst] = W[:, src]
    return out


def similarity_matrix(
    W_child: np.ndarray, child_keywords: list[str], W_parent: np.ndarray, parent_keywords: list[str]
) -> np.ndarray:
    """Cosine of every child topic (rows) with every parent topic (columns)."""
    union = list(dict.fromkeys([*parent_keywords, *child_keywords]))
    a = on_keywords(W_child, child_keywords, union)
    b = on_keywords(W_parent, parent_keywords, union)
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return a @ b.T


def match_topics(similarity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The renumbering that maximises total similarity: (order, matched).

    `similarity` is (child topics, parent topics). `order[k]` is the child topic that becomes
    topic k; for k below the parent's topic count, `matched[k]` is its similarity to parent
    topic k. A child with more topics than its parent (topics added) has its unmatched topics
    numbered after the parent's, in their own order, each with its similarity to the closest
    parent topic.
    """
    from scipy.optimize import linear_sum_assignment

    n_child, n_parent = similarity.shape
    if n_child < n_parent:
        raise ValueError(
            f"a child has at least its parent's number of topics, got {n_child} "
            f"for a parent with {n_parent}"
        )
    child, parent = linear_sum_assignment(similarity, maximize=True)
    order = np.empty(n_child, dtype=np.int64)
    order[parent] = child
    order[n_parent:] = np.setdiff1d(np.arange(n_child), child)
    matched = np.concatenate(
        [
            similarity[order[:n_parent], np.arange(n_parent)],
            similarity[order[n_parent:]].max(axis=1),
        ]
    )
    return order, matched


def extend_topics(
    X: sp.csr_matrix, W_shared: np.ndarray, shared_columns: np.ndarray, seed: int
) -> np.ndarray:
    """Weights (len(new columns), topics) for the keywords of `X` outside `shared_columns`.

    The parent's topics are known only on the keywords both versions have. Two non-negative
    least-squares solves with one factor held fixed carry them to the rest: first each item's
    loadings on the fixed topics from its shared keywords, then each new keyword's weights from
    the items it occurs on. New keywords thus start in the topics of the items that use them,
    on the scale of the parent's weights; training refines them.

    X : (items, keywords) presence over the child's vocabulary
    W_shared : (len(shared_columns), topics), the parent's weights of the shared keywords
    """
    from sklearn.decomposition import non_negative_factorization

    n_topics = W_shared.shape[1]
    new_columns = np.setdiff1d(np.arange(X.shape[1]), shared_columns)
    if len(new_columns) == 0:
        return np.zeros((0, n_topics), dtype=np.float32)
    H = np.ascontiguousarray(W_shared.T, dtype=np.float64)  # (topics, shared)
    loadings, _, _ = non_negative_factorization(
        X[:, shared_columns].astype(np.float64),
        H=H,
        n_components=n_topics,
        update_H=False,
        max_iter=200,
        random_state=seed,
    )
    new_weights, _, _ = non_negative_factorization(
        sp.csr_matrix(X[:, new_columns].T, dtype=np.float64),
        H=np.ascontiguousarray(loadings.T),
        n_components=n_topics,
        update_H=False,
        max_iter=200,
        random_state=seed,
    )
    return new_weights.astype(np.float32)  # (new, topics)
