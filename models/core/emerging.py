"""New topics for a child version, started from what its parent explains worst.

`topicproj train --parent V --add-topics K` keeps the parent's topics (they start from the
parent's weights and stay aligned to them) and adds K. The K start from the keyword mass the
parent's topics leave unexplained:

1. Each item's loadings on the parent's fixed topics, by non-negative least squares on the
   keywords both versions know (as `lineage.extend_topics` does).
2. The residual of each keyword present on an item: 1 minus its reconstruction from those
   loadings, clipped at 0. A keyword the parent never knew has no reconstruction, so its whole
   mass is residual: the unknown keywords of new traffic count in full.
3. The items whose residual share of keyword mass is highest (`POORLY_COVERED_SHARE` of them)
   are the poorly covered ones; a K-topic NMF of their residual is the new topics' start.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# The share of items, the worst covered first, whose residual seeds the new topics: a quarter
# keeps the factorisation on the items that need new topics, with enough of them to find K.
POORLY_COVERED_SHARE = 0.25
# Keywords a new topic starts with: an NMF component of a residual is diffuse, and a diffuse
# topic opens its gate on most items; its leading keywords are what makes it a theme.
SEED_KEYWORDS = 20


def residual_topics(
    X: sp.csr_matrix, W_shared: np.ndarray, shared_columns: np.ndarray, k: int, seed: int
) -> np.ndarray:
    """Keyword weights (k, keywords) for k new topics from the residual of `X`.

    X : (items, keywords) presence over the child's vocabulary
    W_shared : (len(shared_columns), parent topics), the parent's weights of the shared keywords
    Each row is scaled to the median norm of the parent's topics, so that new topics start on
    the same footing as kept ones.
    """
    from sklearn.decomposition import NMF, non_negative_factorization

    X = sp.csr_matrix(X, dtype=np.float64)
    H = np.zeros((W_shared.shape[1], X.shape[1]))  # (parent topics, keywords)
    H[:, shared_columns] = W_shared.T
    loadings, _, _ = non_negative_factorization(
        X[:, shared_columns],
        H=np.ascontiguousarray(W_shared.T, dtype=np.float64),
        n_components=W_shared.shape[1],
        update_H=False,
        max_iter=200,
        random_state=seed,
    )  # (items, parent topics)
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    fitted = np.einsum("nt,tn->n", loadings[rows], H[:, X.indices])  # at X's non-zeros only
    R = sp.csr_matrix(
        (np.clip(X.data - fitted, 0.0, None), X.indices.copy(), X.indptr.copy()), shape=X.shape
    )
    R.eliminate_zeros()
    mass = np.asarray(X.sum(axis=1)).ravel()
    share = np.asarray(R.sum(axis=1)).ravel() / np.maximum(mass, 1e-12)
    n_poor = max(k, round(POORLY_COVERED_SHARE * X.shape[0]))
    poor = np.argsort(-share, kind="stable")[:n_poor]
    R_poor = R[poor]
    if R_poor.nnz == 0:
        raise ValueError("the parent explains every item's keywords; there is nothing to add")
    nmf = NMF(n_components=k, init="nndsvda", max_iter=300, random_state=seed)
    nmf.fit(R_poor)
    new = nmf.components_.copy()  # (k, keywords)
    if new.shape[1] > SEED_KEYWORDS:
        cut = np.partition(new, -SEED_KEYWORDS, axis=1)[:, -SEED_KEYWORDS][:, None]
        new[new < cut] = 0.0
    norms = np.linalg.norm(new, axis=1, keepdims=True)
    target = float(np.median(np.linalg.norm(W_shared, axis=0)))
    return (new / np.maximum(norms, 1e-12) * target).astype(np.float32)
