"""The large planted catalog: deterministic, the sizes asked for, stray keywords where promised."""

from __future__ import annotations

import pytest

from topicproj.models.data.synthetic_large import SMALL, make_large_synthetic_catalog


def test_same_seed_same_catalog_and_another_seed_another():
    a, b = make_large_synthetic_catalog(SMALL), make_large_synthetic_catalog(SMALL)
    assert a.catalog.keywords == b.catalog.keywords and a.item_topics == b.item_topics
    assert make_large_synthetic_catalog(SMALL, seed=1).catalog.keywords != a.catalog.keywords


def test_items_draw_from_their_planted_topics_plus_stray_keywords():
    s = make_large_synthetic_catalog(SMALL)
    owner = {k: t for t, kws in enumerate(s.topic_keywords) for k in kws}
    assert len(s.catalog) == SMALL.n_items and len(s.topic_keywords) == SMALL.n_topics
    short = stray_items = foreign = 0
    rows = zip(s.catalog.keywords, s.item_topics, s.catalog.genres, strict=True)
    for kws, planted, genres in rows:
        assert kws and len(set(kws)) == len(kws)
        assert genres == [s.topic_names[t] for t in planted]
        own = [k for k in kws if owner.get(k) in planted]
        # every planted topic contributes a keyword of its own
        assert {owner[k] for k in own} == set(planted)
        short += len(kws) <= 2 and len(planted) == 1 and len(own) == len(kws)
        stray = [k for k in kws if owner.get(k) not in planted]
        stray_items += bool(stray)
        foreign += any(k in owner for k in stray)  # a keyword of a topic it does not belong to
    n = len(s.catalog)
    assert short / n == pytest.approx(SMALL.short_fraction, abs=0.05)
    assert stray_items / n == pytest.approx((1 - SMALL.short_fraction) * SMALL.noise_rate, abs=0.05)
    assert foreign > 0.01 * n  # the ReLU's trap exists


def test_long_tail_keywords_belong_to_no_topic():
    s = make_large_synthetic_catalog(SMALL, noise_rate=1.0, short_fraction=0.0)
    vocab = {k for kws in s.catalog.keywords for k in kws}
    tail = {k for k in vocab if k.startswith("tail")}
    assert len(tail) > 100
    assert not tail & {k for kws in s.topic_keywords for k in kws}


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        make_large_synthetic_catalog(SMALL, keywords_per_topic=4)
    with pytest.raises(ValueError):
        make_large_synthetic_catalog(SMALL, noise_rate=1.5)
