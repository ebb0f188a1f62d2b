"""What traffic looks like in topic space, and how far it is from what the model was trained on.

Three pieces, all plain numpy, used alike by training (the baseline a model directory keeps), by
the server (a live window per served version) and offline (`topicproj drift`):

- `TrafficCounts`: additive sums over a set of items: per topic, the items on which it is active
  and its summed activation; the items with no active topic; a histogram of keywords per item;
  keywords sent and keywords unknown. Two sets' counts add up to their union's, so a window is
  a sum of buckets and a baseline is the counts of the training catalog.
- `TrafficWindow`: a ring of item-count buckets (the most recent `buckets` x `bucket_items`
  items), plus a space-saving sketch of the unknown keywords decayed at the same pace.
  Why a ring and not decayed counts: a fixed number of items makes the drift score's noise
  floor fixed too (Jensen-Shannon divergence between two samples shrinks with their size), so
  a threshold calibrated on N items holds whatever the request rate; and "the last N items,
  the oldest seen T seconds ago" is a window a person can read. Memory is buckets x topics
  floats and `capacity` sketch entries, whatever the traffic.
- `compare`: the drift score (Jensen-Shannon divergence, base 2, in [0, 1]) between two
  topic distributions, with per-topic shares side by side and the topics that moved most.

The topic distribution of a set of items is each topic's count of items it is active on, plus
one more category for the items with no active topic, normalised to sum to 1: a shift of traffic
towards items that no topic explains is drift too.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

LENGTH_BINS = 33  # keywords per item: 0, 1, ..., 31, and 32 or more
DEFAULT_BUCKET_ITEMS = 1000
DEFAULT_BUCKETS = 10
DEFAULT_SKETCH_CAPACITY = 2000
MOVED_TOPICS = 5  # topics listed as having moved most


@dataclass
class TrafficCounts:
    """Sums over a set of items projected by one model (additive: see the module doc).

    active : (topics,) items on which each topic is active (activation > 0)
    activation : (topics,) summed activation of each topic
    lengths : (LENGTH_BINS,) items by number of keywords sent (known + unknown)
    """

    items: int
    active: np.ndarray
    activation: np.ndarray
    unassigned: int  # items with no active topic
    lengths: np.ndarray
    keywords: int  # keywords sent, known and unknown
    unknown: int  # of those, not in the vocabulary

    @classmethod
    def zeros(cls, n_topics: int) -> TrafficCounts:
        return cls(
            0, np.zeros(n_topics), np.zeros(n_topics), 0, np.zeros(LENGTH_BINS, np.int64), 0, 0
        )

    @classmethod
    def of_batch(cls, Y: np.ndarray, known: np.ndarray, unknown: np.ndarray) -> TrafficCounts:
        """Counts of a projected batch. Y: (items, topics); known, unknown: (items,)."""
        on = Y > 0  # (items, topics)
        sent = np.asarray(known, np.int64) + np.asarray(unknown, np.int64)
        # Column sums as matrix-vector products: BLAS runs them several times faster than a
        # reduction over axis 0 with a cast. Counts are exact in float32 up to 2**24 items.
        ones = np.ones(len(Y), np.float32)
        return cls(
            items=len(Y),
            active=(ones @ on.astype(np.float32)).astype(np.float64),
            activation=ones.astype(np.float64) @ np.asarray(Y, np.float64),
            unassigned=int((~on.any(axis=1)).sum()),
            lengths=np.bincount(np.minimum(sent, LENGTH_BINS - 1), minlength=LENGTH_BINS),
            keywords=int(sent.sum()),
            unknown=int(np.sum(unknown)),
        )

    def add(self, other: TrafficCounts) -> None:
        self.items += other.items
        self.active += other.active
        self.activation += other.activation
        self.unassigned += other.unassigned
        self.lengths += other.lengths
        self.keywords += other.keywords
        self.unknown += other.unknown

    def copy(self) -> TrafficCounts:
        return TrafficCounts.from_dict(self.to_dict())

    @property
    def n_topics(self) -> int:
        return len(self.active)

    def shares(self) -> np.ndarray:
        """(topics,) share of items on which each topic is active."""
        return self.active / max(self.items, 1)

    def mean_activation(self) -> np.ndarray:
        """(topics,) mean activation of each topic over all items."""
        return self.activation / max(self.items, 1)

    def unassigned_ratio(self) -> float:
        return self.unassigned / max(self.items, 1)

    def unknown_ratio(self) -> float:
        return self.unknown / max(self.keywords, 1)

    def distribution(self) -> np.ndarray:
        """(topics + 1,) the topic distribution: active counts and the unassigned, summing to 1."""
        mass = np.append(self.active, self.unassigned).astype(np.float64)
        total = mass.sum()
        return mass / total if total > 0 else mass

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": int(self.items),
            "active": [float(x) for x in self.active],
            "activation": [round(float(x), 6) for x in self.activation],
            "unassigned": int(self.unassigned),
            "lengths": [int(x) for x in self.lengths],
            "keywords": int(self.keywords),
            "unknown": int(self.unknown),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrafficCounts:
        return cls(
            items=int(data["items"]),
            active=np.asarray(data["active"], dtype=np.float64),
            activation=np.asarray(data["activation"], dtype=np.float64),
            unassigned=int(data["unassigned"]),
            lengths=np.asarray(data["lengths"], dtype=np.int64),
            keywords=int(data["keywords"]),
            unknown=int(data["unknown"]),
        )


@dataclass
class Baseline:
    """What a model saw in training: the counts of its training catalog in topic space, and the
    unknown-keyword rate of held-out items (keywords of items outside a vocabulary fitted
    without them: what new traffic of the same kind brings)."""

    counts: TrafficCounts
    unknown_ratio: float

    def to_dict(self) -> dict[str, Any]:
        return {"counts": self.counts.to_dict(), "unknown_ratio": round(self.unknown_ratio, 6)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Baseline:
        return cls(TrafficCounts.from_dict(data["counts"]), float(data["unknown_ratio"]))


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence of two distributions, base 2: 0 when equal, 1 when disjoint."""
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    m = 0.5 * (p + q)

    def kl(a: np.ndarray) -> float:
        nz = a > 0
        return float(np.sum(a[nz] * np.log2(a[nz] / m[nz])))

    return min(max(0.5 * kl(p) + 0.5 * kl(q), 0.0), 1.0)


def drift_score(now: TrafficCounts, reference: TrafficCounts) -> float | None:
    """JS divergence of the two topic distributions; None when either has no items."""
    if now.items == 0 or reference.items == 0:
        return None
    return js_divergence(now.distribution(), reference.distribution())


# -- the unknown keywords that recur -------------------------------------------------------------


class SpaceSaving:
    """The most frequent keys of a stream, with approximate counts, in `capacity` entries.

    Metwally et al.'s space-saving: a key already held adds to its count; a new one takes the
    place of the held key with the smallest count, starting from that count (which becomes its
    `error`, the most its count can overstate). A key with a true count above total/capacity is
    always held. Updated a batch at a time: the batch's keys are counted first (`Counter`, in
    C), held keys add their counts with numpy, and the new keys are merged in as a second
    summary (see `update`), so the per-key Python is one dict probe per distinct keyword.
    """

    def __init__(self, capacity: int = DEFAULT_SKETCH_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.keys = np.empty(capacity, dtype=object)
        self.counts = np.zeros(capacity, dtype=np.float64)
        self.errors = np.zeros(capacity, dtype=np.float64)
        self.size = 0
        self._slot: dict[str, int] = {}

    def update(self, keys: Sequence[str], weight: float = 1.0) -> None:
        """Count `keys`, each occurrence as `weight` (a sample of 1 in `weight` stands for
        the whole)."""
        if len(keys) == 0:
            return
        batch = collections.Counter(keys)
        names = list(batch)
        counts = np.fromiter(batch.values(), np.float64, len(names))
        if weight != 1.0:
            counts *= weight
        slots = np.fromiter(map(self._slot.get, names, itertools.repeat(-1)), np.int64, len(names))
        held = slots >= 0
        np.add.at(self.counts, slots[held], counts[held])
        new = np.flatnonzero(~held)
        if len(new) == 0:
            return
        new = new[np.argsort(-counts[new], kind="stable")]  # largest first
        names_new = np.array(names, dtype=object)[new]
        # Free entries (only before the sketch first fills, so nothing was evicted yet and
        # the counts are exact) take the largest new keys.
        free = min(self.capacity - self.size, len(new))
        if free:
            slots_free = np.arange(self.size, self.size + free)
            self._place(slots_free, names_new[:free], counts[new[:free]], np.zeros(free))
            self.size += free
        if free == len(new):
            return
        # The rest could each have occurred up to `floor` times before (the smallest held
        # count: anything not held has been seen at most that often). They enter with that
        # added as their error, and the `capacity` largest of the held and the entering stay:
        # the merge of two space-saving summaries (Agarwal et al., "Mergeable summaries").
        floor = float(self.counts.min())
        entering = counts[new[free:]] + floor
        merged = np.concatenate([self.counts, entering])
        keep = np.argpartition(-merged, self.capacity - 1)[: self.capacity]
        admitted = keep[keep >= self.capacity] - self.capacity
        if len(admitted) == 0:
            return
        kept_held = np.zeros(self.capacity, dtype=bool)
        kept_held[keep[keep < self.capacity]] = True
        evicted = np.flatnonzero(~kept_held)  # as many as admitted
        collections.deque(map(self._slot.pop, self.keys[evicted]), maxlen=0)
        self._place(
            evicted, names_new[free:][admitted], entering[admitted], np.full(len(admitted), floor)
        )

    def _place(
        self, slots: np.ndarray, keys: np.ndarray, counts: np.ndarray, errors: np.ndarray
    ) -> None:
        self.keys[slots] = keys
        self.counts[slots] = counts
        self.errors[slots] = errors
        self._slot.update(zip(keys.tolist(), slots.tolist(), strict=True))

    def decay(self, factor: float) -> None:
        """Scale every count (and error) by `factor`: older occurrences weigh less."""
        self.counts *= factor
        self.errors *= factor

    def top(self, n: int) -> list[tuple[str, float, float]]:
        """The `n` largest entries as (key, count, error), largest first."""
        order = np.argsort(-self.counts[: self.size], kind="stable")[:n]
        return [(str(self.keys[i]), float(self.counts[i]), float(self.errors[i])) for i in order]


# -- the live window -----------------------------------------------------------------------------


@dataclass
class _Bucket:
    counts: TrafficCounts
    started: float  # clock time of its first item
    ended: float = 0.0  # clock time of its last item


@dataclass(frozen=True)
class WindowSnapshot:
    counts: TrafficCounts  # summed over the window's buckets
    age_seconds: float  # since the window's oldest item arrived
    unknown_keywords: list[tuple[str, float, float]]  # (keyword, approximate count, error)
    items_seen: int  # since the window started, including those that left it


@dataclass
class TrafficWindow:
    """The most recent items' counts in a ring of `buckets` buckets of `bucket_items` items.

    A batch is split across buckets at their item boundaries (`np.add.reduceat`), so the window
    holds between (buckets - 1) x bucket_items and buckets x bucket_items items once full. The
    unknown-keyword sketch decays by (1 - 1/buckets) each time a bucket fills, so it follows
    about the same stretch of traffic. Thread-safe: updated by one thread, read by others.
    """

    n_topics: int
    bucket_items: int = DEFAULT_BUCKET_ITEMS
    buckets: int = DEFAULT_BUCKETS
    sketch_capacity: int = DEFAULT_SKETCH_CAPACITY
    clock: Callable[[], float] = time.time
    _ring: collections.deque[_Bucket] = field(init=False)
    _sketch: SpaceSaving = field(init=False)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _seen: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.bucket_items < 1 or self.buckets < 1:
            raise ValueError("bucket_items and buckets must be at least 1")
        self._ring = collections.deque(maxlen=self.buckets)
        self._sketch = SpaceSaving(self.sketch_capacity)

    def add(
        self,
        Y: np.ndarray,
        known: np.ndarray,
        unknown: np.ndarray,
        unknown_keywords: Sequence[str] = (),
        unknown_weight: float = 1.0,
    ) -> None:
        """Record a projected batch. Y: (items, topics); `unknown_keywords`: the batch's
        unknown keywords, normalised, one entry per occurrence (or a sample of them, each
        standing for `unknown_weight` occurrences)."""
        n = len(Y)
        if n == 0:
            return
        now = self.clock()
        with self._lock:
            self._sketch.update(unknown_keywords, unknown_weight)
            start = 0
            while start < n:
                if not self._ring or self._ring[-1].counts.items >= self.bucket_items:
                    if self._ring:
                        self._sketch.decay(1.0 - 1.0 / self.buckets)
                    self._ring.append(_Bucket(TrafficCounts.zeros(self.n_topics), now))
                bucket = self._ring[-1]
                end = min(n, start + self.bucket_items - bucket.counts.items)
                bucket.counts.add(
                    TrafficCounts.of_batch(Y[start:end], known[start:end], unknown[start:end])
                )
                bucket.ended = now
                start = end
            self._seen += n

    def snapshot(self, top_unknown: int = 20) -> WindowSnapshot:
        with self._lock:
            total = TrafficCounts.zeros(self.n_topics)
            for b in self._ring:
                total.add(b.counts)
            age = self.clock() - self._ring[0].started if self._ring else 0.0
            return WindowSnapshot(total, max(age, 0.0), self._sketch.top(top_unknown), self._seen)


def batch_unknown_keywords(keywords: Sequence[str], ids: np.ndarray) -> list[str]:
    """The normalised keywords of a flat batch whose looked-up `ids` are negative (unknown).
    (Serving asks the vocabulary, `Vocabulary.unknown_keywords`, which remembers them.)"""
    from .vocabulary import normalize_array

    missing = np.flatnonzero(ids < 0)
    if len(missing) == 0:
        return []
    raw = list(map(keywords.__getitem__, missing.tolist()))  # the unknown ones only
    normalised = normalize_array(pa.array(raw, pa.string()))
    # An empty keyword (all spaces) is no keyword: dropped in Arrow, not one by one.
    return normalised.filter(pc.not_equal(normalised, "")).to_pylist()


# -- comparison ----------------------------------------------------------------------------------


def compare(
    now: TrafficCounts,
    reference: TrafficCounts | None,
    *,
    labels: Sequence[str] | None = None,
    reference_unknown_ratio: float | None = None,
    moved: int = MOVED_TOPICS,
) -> dict[str, Any]:
    """`now` against `reference` (None: no baseline), as plain data for tables and JSON.

    `reference_unknown_ratio` overrides the reference's own unknown ratio (a model's baseline
    keeps the held-out rate, which is the fair comparison for traffic).
    """
    shares = now.shares()
    mean = now.mean_activation()
    ref_shares = reference.shares() if reference is not None else None
    ref_mean = reference.mean_activation() if reference is not None else None
    topics = []
    for k in range(now.n_topics):
        row: dict[str, Any] = {
            "topic": k,
            "label": labels[k] if labels is not None else str(k),
            "share": float(shares[k]),
            "mean_activation": float(mean[k]),
        }
        if ref_shares is not None and ref_mean is not None:
            row["baseline_share"] = float(ref_shares[k])
            row["baseline_mean_activation"] = float(ref_mean[k])
        topics.append(row)
    drift = drift_score(now, reference) if reference is not None else None
    moved_topics: list[int] = []
    if ref_shares is not None:
        moved_topics = [int(k) for k in np.argsort(-np.abs(shares - ref_shares), kind="stable")]
        moved_topics = moved_topics[:moved]
    if reference is not None and reference_unknown_ratio is None:
        reference_unknown_ratio = reference.unknown_ratio()
    return {
        "items": now.items,
        "has_baseline": reference is not None,
        "drift": drift,
        "unassigned_ratio": now.unassigned_ratio(),
        "baseline_unassigned_ratio": reference.unassigned_ratio() if reference else None,
        "unknown_keyword_ratio": now.unknown_ratio(),
        "baseline_unknown_keyword_ratio": reference_unknown_ratio,
        "keyword_lengths": [int(x) for x in now.lengths],
        "baseline_keyword_lengths": [int(x) for x in reference.lengths] if reference else None,
        "moved_topics": moved_topics,
        "topics": topics,
    }


def catalog_profile(
    model: Any, items: Sequence[Sequence[str]], *, top_unknown: int = 20, batch_size: int = 8192
) -> tuple[TrafficCounts, list[tuple[str, float, float]]]:
    """A whole catalog's counts under `model` (a fitted `TopicModel`), and its unknown keywords
    that recur, as the server's window would see them: for `topicproj drift`."""
    counts = TrafficCounts.zeros(model.n_topics)
    sketch = SpaceSaving(max(top_unknown, DEFAULT_SKETCH_CAPACITY))
    vocabulary = model.vocabulary_
    for s in range(0, len(items), batch_size):
        part = items[s : s + batch_size]
        batch = vocabulary.map_batch(part)
        Y = model.project_batch(batch).cpu().numpy()  # (items, topics)
        counts.add(TrafficCounts.of_batch(Y, batch.known, batch.unknown))
        if top_unknown and batch.unknown.any():
            flat = [k for keywords in part for k in keywords]
            sketch.update(batch_unknown_keywords(flat, vocabulary._lookup_raw(flat)))
    return counts, sketch.top(top_unknown)
