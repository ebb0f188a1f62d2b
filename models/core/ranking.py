"""Each item's strongest topics, for responses and offline output alike."""

from __future__ import annotations

import numpy as np


def top_topics(Y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each item's highest active topics, best first: (topics, scores, counts).

    topics and scores are flat, item after item; counts (items,) says how many belong to each,
    at most k, since only topics with a positive activation make the list.
    """
    k = min(k, Y.shape[1])
    order = np.argsort(-Y, axis=1, kind="stable")[:, :k]  # (items, k)
    scores = np.take_along_axis(Y, order, axis=1)
    keep = scores > 0
    return order[keep].astype(np.int32), scores[keep], keep.sum(axis=1)
