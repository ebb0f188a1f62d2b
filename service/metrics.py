"""Every Prometheus metric the service exports, defined here and only used elsewhere.

Names follow the Prometheus naming guide (`_seconds`, `_total`, `_ratio`, `_info`). Labels are
bounded: RPC method names, status codes and job states only, never an item id or keyword. Each
instance takes its own `registry`, so tests can use a fresh `CollectorRegistry`; the standard
process and platform collectors are registered on it too (per worker with `--workers`).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)
RATIO_BUCKETS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
JOB_SECONDS_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
TOPIC_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377)


class BulkHistogram(Collector):
    """A histogram that takes a whole array of observations in one call.

    `Histogram.observe` is one Python call per value; per-item metrics of a 4,096-item batch
    would cost more than projecting it. This counts with numpy and exports the same
    `_bucket`, `_count` and `_sum` series through the public collector interface.
    """

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.upper = np.array([*buckets, np.inf], dtype=np.float64)
        self.counts = np.zeros(len(self.upper), dtype=np.int64)
        self.sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_many(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        # bucket i holds the values <= upper[i] and > upper[i - 1]
        per_bucket = np.bincount(
            np.searchsorted(self.upper, values, side="left"), minlength=len(self.upper)
        )
        with self._lock:
            self.counts += per_bucket
            self.sum += float(values.sum())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            cumulative = np.cumsum(self.counts).tolist()
            total = self.sum
        yield HistogramMetricFamily(
            self.name,
            self.documentation,
            buckets=[(floatToGoString(u), c) for u, c in zip(self.upper, cumulative, strict=True)],
            sum_value=total,
        )


class TrafficCollector(Collector):
    """The served version's traffic profile against its baseline, computed at scrape time.

    `source` returns the profile (`TrafficProfiles.report()`), the same one `GetTraffic`
    answers with, so metrics and RPC agree. Drift is NaN while there is nothing to compare
    (no baseline, or no traffic yet): an alert comparing it is then false, not zero.
    Per-topic series only when `per_topic` (topics x series per server).
    """

    def __init__(
        self, source: Callable[[], dict[str, Any]], per_topic: bool, registry: CollectorRegistry
    ) -> None:
        self.source = source
        self.per_topic = per_topic
        registry.register(self)

    def describe(self) -> Iterator[Metric]:
        return iter(())  # collected lazily: the source may not be ready at registration

    def collect(self) -> Iterator[Metric]:
        r = self.source()

        def value(x: float | None) -> float:
            return math.nan if x is None else float(x)

        has_items = r["window_items"] > 0
        yield GaugeMetricFamily(
            "topicproj_topic_drift",
            "Jensen-Shannon divergence (base 2, 0-1) of the traffic window's topic shares "
            "against the served model's training baseline; NaN: no baseline or no traffic",
            value=value(r["drift"]),
        )
        yield GaugeMetricFamily(
            "topicproj_unassigned_items_ratio",
            "Share of the traffic window's items on which no topic is active",
            value=value(r["unassigned_ratio"] if has_items else None),
        )
        yield GaugeMetricFamily(
            "topicproj_baseline_unassigned_items_ratio",
            "Share of the served model's training items on which no topic is active",
            value=value(r["baseline_unassigned_ratio"]),
        )
        yield GaugeMetricFamily(
            "topicproj_traffic_unknown_keywords_ratio",
            "Share of the traffic window's keywords not in the vocabulary",
            value=value(r["unknown_keyword_ratio"] if has_items else None),
        )
        yield GaugeMetricFamily(
            "topicproj_baseline_unknown_keywords_ratio",
            "Share of held-out training items' keywords outside a vocabulary fitted without "
            "them: what traffic like the training catalog's brings",
            value=value(r["baseline_unknown_keyword_ratio"]),
        )
        yield GaugeMetricFamily(
            "topicproj_traffic_window_items",
            "Items in the traffic window of the served version",
            value=float(r["window_items"]),
        )
        yield GaugeMetricFamily(
            "topicproj_traffic_window_age_seconds",
            "Time since the oldest item of the traffic window arrived",
            value=float(r["window_age_seconds"]),
        )
        if self.per_topic:
            share = GaugeMetricFamily(
                "topicproj_topic_active_ratio",
                "Share of the traffic window's items on which the topic is active",
                labels=["topic"],
            )
            for t in r["topics"]:
                share.add_metric([str(t["topic"])], t["share"])
            yield share


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None, *, version: str = "") -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        # The standard collectors: process_* (CPU, memory, open files), python_info and
        # python_gc_* (what the default registry has; a registry of our own starts empty).
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.build = Info("topicproj_build", "The topicproj build serving", registry=r)
        self.build.info({"version": version or "unknown"})
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
        self.zero_ratio = BulkHistogram(
            "topicproj_zero_topic_ratio",
            "Share of exactly-zero topics, per projected item",
            RATIO_BUCKETS,
            r,
        )
        self.active_topics = BulkHistogram(
            "topicproj_active_topics",
            "Topics with a positive activation, per projected item",
            TOPIC_BUCKETS,
            r,
        )
        self.unknown_ratio = BulkHistogram(
            "topicproj_unknown_keyword_ratio",
            "Share of an item's keywords not in the vocabulary, per item with keywords",
            RATIO_BUCKETS,
            r,
        )
        self.dead_topics = Gauge(
            "topicproj_dead_topics",
            "Topics that did not fire in the last dead_topic_window items",
            registry=r,
        )
        self.nonfinite_batches = Counter(
            "topicproj_nonfinite_batches",
            "Batches whose projection held inf or NaN; their requests failed with INTERNAL",
            registry=r,
        )
        self.queued_keywords = Gauge(
            "topicproj_queued_keywords",
            "Keywords of the requests admitted and not yet answered (max_queued_keywords)",
            registry=r,
        )
        self.refused = Counter(
            "topicproj_requests_refused",
            "Calls refused by a limit before their work began, by limit",
            ["limit"],
            registry=r,
        )
        self.queue_items = Gauge("topicproj_queue_items", "Items waiting to be batched", registry=r)
        # The response cache (`--response-cache-bytes`): a hit answers without projecting.
        self.cache_hits = Counter(
            "topicproj_response_cache_hits", "Project calls answered from the cache", registry=r
        )
        self.cache_misses = Counter(
            "topicproj_response_cache_misses",
            "Project calls looked up in the cache and not found there",
            registry=r,
        )
        self.cache_evictions = Counter(
            "topicproj_response_cache_evictions",
            "Answers dropped from the cache to stay within its size",
            registry=r,
        )
        self.cache_bytes = Gauge(
            "topicproj_response_cache_bytes", "Bytes the response cache holds", registry=r
        )
        self.inflight = Gauge(
            "topicproj_inflight_requests", "RPCs being handled right now", registry=r
        )
        self.model = Info("topicproj_model", "The model being served", registry=r)
        self.model_topics = Gauge(
            "topicproj_model_topics", "Topics of the served model", registry=r
        )
        self.model_vocabulary = Gauge(
            "topicproj_model_vocabulary_keywords",
            "Keywords in the served model's vocabulary",
            registry=r,
        )
        self.model_swaps = Counter(
            "topicproj_model_swaps", "Model versions activated while serving", registry=r
        )
        self.models_refused = Counter(
            "topicproj_model_versions_refused",
            "Model versions refused at start (a failed checksum or an unreadable file)",
            registry=r,
        )

        # Training jobs of this server (with --model-root).
        self.jobs = Gauge(
            "topicproj_training_jobs", "Training jobs, by state", ["state"], registry=r
        )
        for state in JOB_STATES:  # every state exported from the start, at 0
            self.jobs.labels(state)
        self.job_epochs = Counter(
            "topicproj_training_epochs", "Training epochs completed, all jobs", registry=r
        )
        self.job_seconds = Histogram(
            "topicproj_training_job_duration_seconds",
            "Wall time of ended training jobs, by outcome",
            ["outcome"],
            buckets=JOB_SECONDS_BUCKETS,
            registry=r,
        )
        self.last_job_seconds = Gauge(
            "topicproj_training_last_job_duration_seconds",
            "Wall time of the last training job that ended",
            registry=r,
        )
        self.job_failures = Counter(
            "topicproj_training_job_failures", "Training jobs that ended FAILED", registry=r
        )

    def watch_traffic(self, source: Callable[[], dict[str, Any]], per_topic: bool) -> None:
        """Export the traffic profile `source` returns (see `TrafficCollector`)."""
        TrafficCollector(source, per_topic, self.registry)

    def describe_model(
        self, version: str, topics: int, vocabulary: int, activation: str, device: str
    ) -> None:
        self.model.info(
            {
                "version": version,
                "topics": str(topics),
                "vocabulary_size": str(vocabulary),
                "activation": activation,
                "device": device,
            }
        )
        self.model_topics.set(topics)
        self.model_vocabulary.set(vocabulary)

    def observe_projections(self, Y: np.ndarray, known: np.ndarray, unknown: np.ndarray) -> None:
        """Per-item sparsity and vocabulary coverage of a projected batch. Y: (items, topics)."""
        if len(Y) == 0:
            return
        total = known + unknown
        self.zero_ratio.observe_many((Y == 0).mean(axis=1))
        self.active_topics.observe_many((Y > 0).sum(axis=1))
        self.unknown_ratio.observe_many(unknown[total > 0] / total[total > 0])


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
