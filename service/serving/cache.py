"""`ResponseCache`: answers to repeated requests, bounded in bytes, keyed by the served version.

Catalog traffic repeats itself: the same popular movies are projected again and again. A hit
skips validation, the batcher's hand-off to the compute thread and the response building; it
costs one serialisation of the request (C code) and one dict probe, which is also all a miss
costs on top of the normal path.

The key is the served version plus the request's deterministic serialisation: every field that
can change the answer (keywords and their spelling, weights, ids, top_k, explain, the response
form) is in it by construction, so a hit can never be the answer to another question. Two
spellings of one keyword bag are two entries; normalising them first would cost the keyword
mapping that a hit is meant to save.

The holder clears the cache whenever what it serves changes (a swap, new labels, which top-k
answers carry). Each clear starts a new generation, and an answer computed in an older one is
not stored, so a request that raced a change cannot bring a stale answer back. The served
version is in the key as well, and an entry is stored under the version that computed it.
"""

from __future__ import annotations

import collections
import threading

from topicproj.service.metrics import ServiceMetrics
from topicproj.v1 import topicproj_pb2 as pb

Key = tuple[int, str, bytes]  # (generation, version, request)

# What one entry costs beyond its two payloads: the key tuple, the dict and LRU slots and the
# response object. Counted so that a flood of tiny answers cannot exceed the budget either.
ENTRY_OVERHEAD_BYTES = 256


class ResponseCache:
    """Least recently used answers, up to `max_bytes` of keys and serialised responses."""

    def __init__(self, max_bytes: int, metrics: ServiceMetrics) -> None:
        self.max_bytes = max_bytes
        # One entry may take this share of the budget at most: a huge answer that would evict
        # hundreds of small ones is computed, not kept.
        self.max_entry_bytes = max_bytes // 16
        self.metrics = metrics
        self._entries: collections.OrderedDict[Key, tuple[pb.ProjectResponse, int]] = (
            collections.OrderedDict()
        )
        self._bytes = 0
        self._generation = 0
        # Requests are served on one event loop, but `clear` can come from an activation task
        # and tests read it from other threads; a lock keeps the byte count exact.
        self._lock = threading.Lock()

    def key(self, version: str, request: pb.ProjectRequest) -> Key | None:
        """The key of `request` against `version`, or None when it is too large to keep."""
        data = request.SerializeToString(deterministic=True)
        if len(data) > self.max_entry_bytes:
            return None
        return self._generation, version, data

    def get(self, key: Key) -> pb.ProjectResponse | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is None:
            self.metrics.cache_misses.inc()
            return None
        self.metrics.cache_hits.inc()
        return entry[0]

    def put(self, key: Key, version: str, response: pb.ProjectResponse) -> None:
        """Keep `response` under `version`, the one that computed it, unless what is served
        changed since `key` was made."""
        generation, _, data = key
        key = (generation, version, data)
        size = len(data) + response.ByteSize() + ENTRY_OVERHEAD_BYTES
        if size > self.max_entry_bytes:
            return
        evicted = 0
        with self._lock:
            if generation != self._generation:
                return
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (response, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, freed) = self._entries.popitem(last=False)
                self._bytes -= freed
                evicted += 1
            held = self._bytes
        if evicted:
            self.metrics.cache_evictions.inc(evicted)
        self.metrics.cache_bytes.set(held)

    def clear(self) -> None:
        """Forget every answer: what is served changed."""
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._bytes = 0
        self.metrics.cache_bytes.set(0)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes
