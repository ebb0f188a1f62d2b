"""Every Prometheus metric the service exports, defined here and only used elsewhere.

Labels are bounded: RPC method names and status codes only, never an item id or keyword. Each
instance takes its own `registry`, so tests can use a fresh `CollectorRegistry`.
"""

from __future__ import annotations

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
FRACTION_BUCKETS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
TOPIC_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377)


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "topicproj_requests",
            "RPCs handled, by method and status code",
            ["rpc", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "topicproj_request_latency_seconds",
            "RPC latency, by method and status code",
            ["rpc", "code"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.items = Counter(
            "topicproj_items", "Items received for projection", ["rpc"], registry=r
        )
        self.queue_wait = Histogram(
            "topicproj_queue_wait_seconds",
            "Time an item waited before its batch ran",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_compute = Histogram(
            "topicproj_batch_compute_seconds",
            "Projection time of one batch on the device",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_items = Histogram(
            "topicproj_batch_items", "Items per projected batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.zero_fraction = Histogram(
            "topicproj_zero_topic_fraction",
            "Share of exactly-zero topics, per projected item",
            buckets=FRACTION_BUCKETS,
            registry=r,
        )
        self.active_topics = Histogram(
            "topicproj_active_topics",
            "Topics with a positive activation, per projected item",
            buckets=TOPIC_BUCKETS,
            registry=r,
        )
        self.unknown_fraction = Histogram(
            "topicproj_unknown_keyword_fraction",
            "Share of an item's keywords not in the vocabulary, per item with keywords",
            buckets=FRACTION_BUCKETS,
            registry=r,
        )
        self.dead_topics = Gauge(
            "topicproj_dead_topics",
            "Topics that did not fire in the last dead_topic_window items",
            registry=r,
        )
        self.queue_items = Gauge("topicproj_queue_items", "Items waiting to be batched", registry=r)
        self.inflight = Gauge(
            "topicproj_inflight_requests", "RPCs being handled right now", registry=r
        )
        self.model = Info("topicproj_model", "The model being served", registry=r)

    def observe_projections(self, Y: np.ndarray, known: np.ndarray, unknown: np.ndarray) -> None:
        """Per-item sparsity and vocabulary coverage of a projected batch. Y: (items, topics)."""
        if len(Y) == 0:
            return
        zero = (Y == 0).mean(axis=1)
        active = (Y > 0).sum(axis=1)
        total = known + unknown
        frac = unknown[total > 0] / total[total > 0]
        for z, a in zip(zero.tolist(), active.tolist(), strict=True):
            self.zero_fraction.observe(z)
            self.active_topics.observe(a)
        for f in frac.tolist():
            self.unknown_fraction.observe(f)


class DeadTopicTracker:
    """Which topics have not fired in the last `window` projected items."""

    def __init__(self, n_topics: int, window: int) -> None:
        self.window = window
        self.seen = 0
        self.last_fired = np.full(n_topics, -1, dtype=np.int64)

    def update(self, Y: np.ndarray) -> int:
        """Record a batch (items, topics); the number of dead topics after it."""
        active = Y > 0
        fired = active.any(axis=0)
        # the last row of this batch on which each topic fired
        last_row = len(Y) - 1 - np.argmax(active[::-1], axis=0)
        self.last_fired = np.where(fired, self.seen + last_row, self.last_fired)
        self.seen += len(Y)
        if self.seen < self.window:
            return 0  # too few items yet to call any topic dead
        return int((self.last_fired < self.seen - self.window).sum())
