"""The live traffic profile: a window of recent items per served version, off the hot path.

The batcher calls `TrafficProfiles.record` with a batch's requests and results after it has
handed every request its rows, in its compute thread, before the next batch: a request never
waits for it. The update is numpy over the whole batch (`TrafficWindow.add`); the keywords are
looked at only when the batch has unknown ones. The maths lives in `models/core/traffic.py`;
this module only keeps one window per version and answers `GetTraffic` and the metrics.
"""

from __future__ import annotations

import collections
import itertools
import logging
import operator
import threading
from typing import Any

import numpy as np

from topicproj.models.core.topic_model import TopicModel
from topicproj.models.core.traffic import TrafficWindow, compare
from topicproj.service.settings import Settings

from .holder import ModelHolder, Projected
from .validation import Bags

log = logging.getLogger(__name__)

_version = operator.attrgetter("version")
_keywords = operator.attrgetter("keywords")
_first, _second = operator.itemgetter(0), operator.itemgetter(1)

# Versions whose windows are kept: the served one and the few before it, so that a swap back
# and forth keeps what was seen; older ones are dropped.
KEPT_VERSIONS = 4
# Batches are gathered until they hold this many items, then added to the window in one go:
# an update has a fixed cost (the unknown-keyword sketch's merge of its sample, about 0.7 ms,
# and a few dozen numpy calls) that small gathers would pay again and again; at 4,096 items it
# is a fraction of a microsecond per item. Reports (and so the metrics) flush first, so they
# miss nothing.
FLUSH_ITEMS = 4096
# ... or once they hold this many keywords: the gathered requests keep their keyword strings
# until the update, so a stream of long items (the largest requests the limits allow) must
# not gather thousands of items' worth of them. One largest request's worth.
FLUSH_KEYWORDS = 65536


# Unknown keywords given to the sketch per gathered update at most: past it, a uniform sample
# of them, each counted as the share it stands for. On catalog-like traffic (most unknown
# keywords rare, so the sketch evicts on every update) the sketch was most of the update's
# cost; a keyword that recurs is still sampled in proportion to its count, which is all the
# approximate counts promise.
SKETCH_SAMPLE = 256


class TrafficProfiles:
    def __init__(self, holder: ModelHolder, settings: Settings) -> None:
        self.holder = holder
        self.settings = settings
        self._lock = threading.Lock()
        self._windows: collections.OrderedDict[str, tuple[TopicModel, TrafficWindow]] = (
            collections.OrderedDict()
        )
        self._pending: list[tuple[list[Bags], list[Projected]]] = []
        self._pending_items = 0
        self._pending_keywords = 0
        self._pending_lock = threading.Lock()
        self._rng = np.random.default_rng(0)  # the sketch's sample (it locks its own state)

    def _window(self, version: str) -> tuple[TopicModel, TrafficWindow] | None:
        with self._lock:
            if version in self._windows:
                self._windows.move_to_end(version)
                return self._windows[version]
            model = self.holder.model
            if model.version_ != version:  # swapped since; that batch is not recorded
                return None
            entry = (model, self._new_window(model))
            self._windows[version] = entry
            while len(self._windows) > KEPT_VERSIONS:
                self._windows.popitem(last=False)
            return entry

    def _new_window(self, model: TopicModel) -> TrafficWindow:
        s = self.settings
        return TrafficWindow(
            model.n_topics,
            bucket_items=s.traffic_bucket_items,
            buckets=s.traffic_buckets,
            sketch_capacity=s.traffic_unknown_keywords,
        )

    def record(self, requests: list[Bags], results: list[Projected]) -> None:
        """Gather one batch (the batcher's `after` hook); add the gathered ones to their
        versions' windows once they hold FLUSH_ITEMS items."""
        with self._pending_lock:
            self._pending.append((requests, results))
            self._pending_items += sum(map(len, requests))
            self._pending_keywords += sum(len(r.keywords) for r in requests)
            if self._pending_items < FLUSH_ITEMS and self._pending_keywords < FLUSH_KEYWORDS:
                return
            pending, self._pending = self._pending, []
            self._pending_items = self._pending_keywords = 0
        self._add(pending)

    def flush(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, []
            self._pending_items = self._pending_keywords = 0
        self._add(pending)

    def _add(self, pending: list[tuple[list[Bags], list[Projected]]]) -> None:
        requests = list(itertools.chain.from_iterable(map(_first, pending)))
        results = list(itertools.chain.from_iterable(map(_second, pending)))
        versions = set(map(_version, results))
        if len(versions) == 1:  # the usual case: no swap among the gathered batches
            self._add_version(versions.pop(), requests, results)
            return
        by_version: dict[str, tuple[list[Bags], list[Projected]]] = {}
        for request, result in zip(requests, results, strict=True):
            got = by_version.setdefault(result.version, ([], []))
            got[0].append(request)
            got[1].append(result)
        for version, (rqs, rss) in by_version.items():
            self._add_version(version, rqs, rss)

    def _add_version(self, version: str, requests: list[Bags], results: list[Projected]) -> None:
        entry = self._window(version)
        if entry is None:
            return
        model, window = entry
        Y = np.concatenate([r.Y for r in results])  # (items, topics)
        known = np.concatenate([r.known for r in results])
        unknown = np.concatenate([r.unknown for r in results])
        if not unknown.any():
            window.add(Y, known, unknown)
            return
        keywords: list[str] = []
        if all(r.keyword_ids is not None for r in results):
            # The ids the batch's own lookup found: no keyword is looked up twice.
            ids = np.concatenate([r.keyword_ids for r in results])  # type: ignore[misc]
        else:
            keywords = list(itertools.chain.from_iterable(map(_keywords, requests)))
            ids = model.vocabulary_.lookup(keywords)
        at = np.flatnonzero(ids < 0)
        weight = 1.0
        if len(at) > SKETCH_SAMPLE:  # a uniform sample, each standing for `weight` of them
            weight = len(at) / SKETCH_SAMPLE
            at = np.sort(self._rng.choice(at, SKETCH_SAMPLE, replace=False))
        if not keywords and (ids[at] == -1).any():
            # Spellings the lookup did not remember (past its bound): their text is needed.
            keywords = list(itertools.chain.from_iterable(map(_keywords, requests)))
        names = model.vocabulary_.unknown_keywords(keywords, ids, at)
        window.add(Y, known, unknown, names, unknown_weight=weight)

    def report(self, version: str = "", top_unknown: int = 20) -> dict[str, Any]:
        """The profile of `version` (empty: the served one) against its model's baseline."""
        self.flush()
        with self._lock:
            served = self.holder.model
            version = version or served.version_
            entry = self._windows.get(version)
        if entry is None:
            if version != served.version_:
                from topicproj.service.errors import ModelVersionNotFound

                raise ModelVersionNotFound(version, served.version_)
            entry = (served, self._new_window(served))  # nothing seen yet
        model, window = entry
        snap = window.snapshot(top_unknown)
        baseline = model.baseline_
        out = compare(
            snap.counts,
            baseline.counts if baseline is not None else None,
            labels=model.labels(),
            reference_unknown_ratio=baseline.unknown_ratio if baseline is not None else None,
        )
        out |= {
            "version": version,
            "window_items": snap.counts.items,
            "window_capacity": window.buckets * window.bucket_items,
            "window_age_seconds": snap.age_seconds,
            "items_seen": snap.items_seen,
            "unknown_keywords": [
                {"keyword": k, "count": c, "error": e} for k, c, e in snap.unknown_keywords
            ],
        }
        return out
