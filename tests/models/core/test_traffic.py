"""The traffic profile's maths: baselines in model directories, the bounded window, the
space-saving sketch, the drift score, and children grown with added topics."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from topicproj.models.core.artifacts import MODEL, read_model_dir, write_model_dir
from topicproj.models.core.lineage import match_topics
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.core.traffic import (
    SpaceSaving,
    TrafficCounts,
    TrafficWindow,
    catalog_profile,
    compare,
    drift_score,
    js_divergence,
)
from topicproj.models.data.synthetic import make_synthetic_catalog

SYNTHETIC = {"n_items": 500, "n_topics": 6, "keywords_per_topic": 8, "n_filler_keywords": 40}


@pytest.fixture(scope="module")
def items() -> list[list[str]]:
    return make_synthetic_catalog(**SYNTHETIC).catalog.keywords


@pytest.fixture(scope="module")
def parent(items: list[list[str]]) -> TopicModel:
    return TopicModel(6, min_df=2, max_epochs=10, device="cpu").fit(items)


def test_baseline_is_written_with_the_model_and_loaded_back(
    parent: TopicModel, items: list[list[str]], tmp_path: Path
) -> None:
    b = parent.baseline_
    assert b is not None and b.counts.items == len(items)
    # The baseline is the training catalog's own counts under the trained model.
    batch = parent.vocabulary_.map_batch(items)
    Y = parent.transform(items)
    expected = TrafficCounts.of_batch(Y, batch.known, batch.unknown)
    np.testing.assert_allclose(b.counts.active, expected.active)
    assert b.counts.unassigned == expected.unassigned
    assert 0.0 <= b.unknown_ratio < 1.0
    loaded = TopicModel.load(parent.save(tmp_path / "m"), device="cpu")
    assert loaded.baseline_ is not None
    np.testing.assert_allclose(loaded.baseline_.counts.active, b.counts.active)
    np.testing.assert_array_equal(loaded.baseline_.counts.lengths, b.counts.lengths)
    assert loaded.baseline_.unknown_ratio == pytest.approx(b.unknown_ratio, abs=1e-6)


def test_a_model_directory_from_before_baselines_loads_with_none(
    parent: TopicModel, tmp_path: Path
) -> None:
    tensors, vocabulary, info = read_model_dir(parent.save(tmp_path / "new"))
    del info["baseline"], info["format_version"]
    old = write_model_dir(tmp_path / "old", tensors, vocabulary, info)
    assert "baseline" not in json.loads((old / MODEL).read_text())
    model = TopicModel.load(old, device="cpu")
    assert model.baseline_ is None
    report = compare(TrafficCounts.zeros(model.n_topics), None)
    assert report["has_baseline"] is False and report["drift"] is None


def test_js_divergence_is_zero_for_equal_and_one_for_disjoint() -> None:
    assert js_divergence(np.array([0.5, 0.5]), np.array([0.5, 0.5])) == 0.0
    assert js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


def test_drift_rises_on_a_shifted_stream_and_stays_low_on_an_unshifted_one(
    parent: TopicModel,
) -> None:
    fresh = make_synthetic_catalog(**SYNTHETIC, seed=7).catalog.keywords  # same generator
    Y = parent.transform(fresh)
    batch = parent.vocabulary_.map_batch(fresh)
    # Shifted: only the items whose strongest topic is one of two topics.
    top = Y.argmax(axis=1)
    shifted = np.flatnonzero(np.isin(top, [0, 1]) & (Y.max(axis=1) > 0))
    baseline = parent.baseline_.counts
    windows = {}
    for name, rows in (("unshifted", np.arange(len(fresh))), ("shifted", shifted)):
        window = TrafficWindow(parent.n_topics, bucket_items=100, buckets=5)
        for s in range(0, len(rows), 64):  # batch by batch, as the server feeds it
            r = rows[s : s + 64]
            window.add(Y[r], batch.known[r], batch.unknown[r])
        windows[name] = drift_score(window.snapshot().counts, baseline)
    assert windows["unshifted"] < 0.02
    assert windows["shifted"] > 5 * windows["unshifted"]
    assert windows["shifted"] > 0.05


def test_the_window_holds_the_latest_buckets_only() -> None:
    window = TrafficWindow(3, bucket_items=10, buckets=3)
    Y = np.zeros((25, 3), np.float32)
    Y[:, 0] = 1.0
    window.add(Y, np.ones(25, np.int64), np.zeros(25, np.int64))
    Y2 = np.zeros((20, 3), np.float32)
    Y2[:, 2] = 1.0
    window.add(Y2, np.ones(20, np.int64), np.zeros(20, np.int64))
    snap = window.snapshot()
    # 45 items seen; buckets of 10 (the last one holds 5): the window keeps the last 3 buckets.
    assert snap.items_seen == 45
    assert snap.counts.items == 25
    assert snap.counts.active.tolist() == [5.0, 0.0, 20.0]


def test_the_window_stays_bounded_under_a_stream_of_made_up_keywords() -> None:
    n_topics, batch = 50, 256
    window = TrafficWindow(n_topics, bucket_items=1000, buckets=10, sketch_capacity=2000)
    rng = np.random.default_rng(0)
    Y = rng.random((batch, n_topics)).astype(np.float32)
    known = np.full(batch, 3, np.int64)
    unknown = np.full(batch, 4, np.int64)

    def feed(start: int, batches: int) -> None:
        for b in range(start, start + batches):
            window.add(Y, known, unknown, [f"made-up-{b}-{j}" for j in range(4 * batch)])

    feed(0, 50)  # fill the window and the sketch
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    feed(50, 100)  # 102,400 more distinct keywords
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 2_000_000, f"the window grew by {grown} bytes"
    snap = window.snapshot(top_unknown=5000)
    assert snap.counts.items <= 10 * 1000
    assert len(snap.unknown_keywords) <= 2000
    assert snap.items_seen == 150 * batch


def test_space_saving_finds_the_heavy_hitters_with_bounded_error() -> None:
    rng = np.random.default_rng(1)
    heavy = {f"hot{i}": 200 - 30 * i for i in range(5)}
    sketch = SpaceSaving(50)
    for b in range(20):
        keys = [k for k, n in heavy.items() for _ in range(n // 20)]
        keys += [f"noise{b}-{j}" for j in range(rng.integers(100, 200))]
        sketch.update(keys)
    top = sketch.top(5)
    assert [k for k, _, _ in top] == list(heavy)
    for key, count, error in top:
        true = (heavy[key] // 20) * 20
        assert true <= count <= true + error  # never under, over by at most its error


def test_catalog_profile_matches_a_window_fed_the_same_items(
    parent: TopicModel, items: list[list[str]]
) -> None:
    odd = [[*kws, "never-seen-keyword"] for kws in items[:100]]
    counts, unknown = catalog_profile(parent, odd, top_unknown=3)
    assert counts.items == 100
    assert unknown[0][0] == "never-seen-keyword" and unknown[0][1] == 100
    assert counts.unknown >= 100


def test_match_topics_numbers_added_topics_after_the_parents() -> None:
    S = np.array([[0.1, 0.9], [0.2, 0.1], [0.95, 0.3]])  # 3 child topics, 2 parent topics
    order, matched = match_topics(S)
    assert order.tolist() == [2, 0, 1]
    assert matched.tolist() == pytest.approx([0.95, 0.9, 0.2])


def test_add_topics_grows_exactly_k_new_topics_and_keeps_the_rest_aligned(
    parent: TopicModel, items: list[list[str]]
) -> None:
    parent.set_labels({0: "first theme"})
    grown = items + make_synthetic_catalog(**SYNTHETIC, seed=2).catalog.keywords
    child = TopicModel(8, min_df=2, max_epochs=10, device="cpu").fit(
        grown, parent=parent, add_topics=2
    )
    lineage = child.lineage_
    assert child.n_topics == 8 and lineage.added_topics == 2
    assert lineage.new[6:] == [True, True]
    kept = np.asarray(lineage.similarity[:6])
    assert not any(lineage.new[:6]) and kept.mean() >= 0.9
    assert child.labels()[0] == "first theme"
    assert child.baseline_.counts.n_topics == 8
    with pytest.raises(ValueError, match="plus 2 added"):
        TopicModel(6, min_df=2, device="cpu").fit(grown, parent=parent, add_topics=2)
    with pytest.raises(ValueError, match="give a parent"):
        TopicModel(6, min_df=2, device="cpu").fit(grown, add_topics=2)
