"""The bulk histogram exports exactly what prometheus-client's own Histogram would."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from topicproj.service.metrics import BulkHistogram, DeadTopicTracker

BUCKETS = (0.0, 0.1, 0.5, 1.0, 3.0)


@given(st.lists(st.floats(-2, 5, allow_nan=False), max_size=50))
def test_bulk_histogram_matches_the_reference_histogram(values):
    ours, reference = CollectorRegistry(), CollectorRegistry()
    bulk = BulkHistogram("h", "doc", BUCKETS, ours)
    one_by_one = Histogram("h", "doc", buckets=BUCKETS, registry=reference)
    bulk.observe_many(np.array(values[: len(values) // 2]))
    bulk.observe_many(np.array(values[len(values) // 2 :]))
    for v in values:
        one_by_one.observe(v)
    for le in ["0.0", "0.1", "0.5", "1.0", "3.0", "+Inf"]:
        got = ours.get_sample_value("h_bucket", {"le": le})
        assert got == reference.get_sample_value("h_bucket", {"le": le}), le
    assert ours.get_sample_value("h_count") == len(values)
    assert np.isclose(ours.get_sample_value("h_sum"), reference.get_sample_value("h_sum"))
    assert b"# TYPE h histogram" in generate_latest(ours)


def test_dead_topics_counts_topics_silent_over_the_window():
    tracker = DeadTopicTracker(n_topics=3, window=4)
    assert tracker.update(np.array([[1.0, 0, 0], [0, 0, 0]])) == 0  # too few items yet
    assert tracker.update(np.array([[0, 1.0, 0], [0, 0, 0]])) == 1  # topic 2 never fired
    assert tracker.update(np.array([[0, 0, 0], [0, 0, 0], [0, 0, 0]])) == 3  # all silent for 4
    assert tracker.update(np.array([[0, 0, 2.0]])) == 2
