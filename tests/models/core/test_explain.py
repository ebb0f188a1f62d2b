"""Explanations are exact: the terms and the bias add up to the pre-activation, the gate
reproduces the projection, and every silent topic that shares a keyword says what closed it."""

from __future__ import annotations

import numpy as np
import pytest

from topicproj.models.core.topic_model import TopicModel

from ..factories import small_synthetic


@pytest.fixture(scope="module", params=["overlap", "relu", "prelu"])
def fitted(request):  # type: ignore[no-untyped-def]
    items = small_synthetic().catalog.keywords
    model = TopicModel(5, activation=request.param, min_df=2, max_epochs=8, device="cpu")
    return model.fit(items), items


def test_explanations_reproduce_the_projection_exactly(fitted):
    model, items = fitted
    sample = [*items[:60], [], ["never seen"]]
    Y = model.transform(sample)
    W = model.components_  # (topics, keywords)
    explanations = model.explain(sample, top_keywords=1000)  # every keyword's term
    assert len(explanations) == len(sample)
    for item, y, explanation in zip(sample, Y, explanations, strict=True):
        active = {t.topic: t for t in explanation.active}
        assert set(active) == set(np.flatnonzero(y))  # the same topics fire
        for t in explanation.active + explanation.closed:
            total = t.bias + sum(score for _, score in t.keywords)
            assert total == pytest.approx(t.pre_activation, rel=1e-5, abs=1e-5)
            gate = min(1.0, max(0.0, t.sharpness * (t.overlap - t.threshold)))
            assert gate == pytest.approx(t.gate, abs=1e-6)
            rectified = t.pre_activation if t.pre_activation >= 0 else 0.0
            if model.activation == "prelu" and t.pre_activation < 0:
                rectified = t.pre_activation * model.projector_.activation.slope[t.topic].item()
            assert rectified * t.gate == pytest.approx(y[t.topic], rel=1e-5, abs=1e-6)
            assert t.activation == pytest.approx(y[t.topic], rel=1e-5, abs=1e-6)
            # each term is the keyword's weight (1 here) times its topic weight
            for keyword, score in t.keywords:
                assert score == pytest.approx(W[t.topic, model.vocabulary_.id(keyword)])
        for t in explanation.closed:
            assert y[t.topic] == 0 and t.keywords[0][1] > 0  # shares a keyword, stayed silent
            assert t.closed_by == ("gate" if t.overlap <= t.threshold else "rectifier")
        if all(model.vocabulary_.id(k) is None for k in item):
            # nothing known: only a bias can fire a topic (relu with b > 0; never the gate)
            assert explanation.closed == []
            assert all(t.keywords == [] and t.pre_activation == t.bias for t in explanation.active)
            if model.activation == "overlap":
                assert explanation.active == []


def test_the_top_keywords_come_first(fitted):
    model, items = fitted
    [explanation] = model.explain([items[3]], top_keywords=2)
    for t in explanation.active:
        scores = [score for _, score in t.keywords]
        assert len(scores) <= 2 and scores == sorted(scores, reverse=True)
