"""The short-item catalog: deterministic, short items with a long tail, overlapping topics."""

from __future__ import annotations

import numpy as np

from topicproj.models.data.synthetic_short import TINY, make_short_synthetic_catalog, summary


def test_same_seed_same_catalog_and_another_seed_another():
    a, b = make_short_synthetic_catalog(TINY), make_short_synthetic_catalog(TINY)
    assert a.catalog.keywords == b.catalog.keywords and a.item_topics == b.item_topics
    assert make_short_synthetic_catalog(TINY, seed=1).catalog.keywords != a.catalog.keywords


def test_items_are_short_with_a_long_tail_and_topics_overlap():
    s = make_short_synthetic_catalog(TINY)
    stats = summary(s.catalog.keywords)
    assert stats["median_keywords"] == TINY.median_keywords
    assert 9 <= stats["p90_keywords"] <= 12
    lengths = np.array([len(k) for k in s.catalog.keywords])
    assert lengths.min() >= 1 and lengths.max() >= 20  # the long tail
    owners: dict[str, set[int]] = {}
    for t, kws in enumerate(s.topic_keywords):
        for k in kws:
            owners.setdefault(k, set()).add(t)
    assert any(len(o) > 1 for o in owners.values())  # a keyword of several topics
    noise = [k for kws in s.catalog.keywords for k in kws if k not in owners]
    share = len(noise) / sum(map(len, s.catalog.keywords))
    assert 0.5 * TINY.noise_share < share < 1.2 * TINY.noise_share
    # every planted topic of an item contributes a keyword of its own
    for kws, planted in zip(s.catalog.keywords, s.item_topics, strict=True):
        for t in planted:
            assert set(kws) & set(s.topic_keywords[t])
