"""The cost limits of one call, checked before the expensive work, and the queue's keyword budget.

A request's cost is its keywords: each becomes a Python string, a vocabulary lookup and a row
of the batch. `declared_keywords` reads how many a request holds from lengths protobuf already
knows (no string is built), so an oversized request is refused before it is decoded; requests
above `OFF_LOOP_KEYWORDS` are then decoded and validated in a worker thread, so that health
checks and small requests keep the event loop. `KeywordBudget` bounds the keywords waiting in
the batcher's queue across every client, which bounds the server's memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from topicproj.service.errors import InvalidInput, QuotaExceeded
from topicproj.service.metrics import ServiceMetrics
from topicproj.service.settings import Settings
from topicproj.v1 import topicproj_pb2 as pb

# Requests of more keywords than this are decoded and validated off the event loop. Below it,
# the hop to a thread (tens of microseconds) costs more than the work.
OFF_LOOP_KEYWORDS = 2048


def declared_keywords(request: pb.ProjectRequest) -> tuple[int, str]:
    """The keywords a request holds, and the field that holds them, without decoding them."""
    if request.WhichOneof("input") == "packed":
        packed = request.packed
        # Every keyword is followed by a separator of one byte, so the byte length bounds the
        # number of keywords from above, and the counts are what the request claims.
        return max(sum(packed.keyword_counts), 0), "packed.keyword_counts"
    items = request.item_list.items
    if len(items) > 0:
        return sum(len(item.keywords) for item in items), "item_list.items"
    return 0, "item_list.items"


def check_request_size(items: int, keywords: int, settings: Settings, field: str) -> None:
    """Refuse a request over the per-request limits (INVALID_ARGUMENT: it can never pass)."""
    if items > settings.max_items_per_request:
        raise InvalidInput(
            f"{items} items in one request; the limit is {settings.max_items_per_request}", field
        )
    if keywords > settings.max_keywords_per_request:
        raise InvalidInput(
            f"{keywords} keywords in one request; the limit is "
            f"{settings.max_keywords_per_request} (split it into smaller requests)",
            field,
        )


def precheck(request: pb.ProjectRequest, settings: Settings) -> int:
    """Check a Project request's size before decoding it; returns its keywords."""
    keywords, field = declared_keywords(request)
    if request.WhichOneof("input") == "packed":
        items = len(request.packed.keyword_counts)
    else:
        items = len(request.item_list.items)
    check_request_size(items, keywords, settings, field)
    return keywords


class KeywordBudget:
    """The keywords of the requests admitted and not yet answered, across every client."""

    def __init__(self, limit: int, metrics: ServiceMetrics, retry_after_s: float) -> None:
        self.limit = limit
        self.metrics = metrics
        self.retry_after_s = retry_after_s
        self.held = 0

    @contextlib.contextmanager
    def hold(self, keywords: int) -> Iterator[None]:
        """Hold `keywords` of the budget for the body, or raise QuotaExceeded."""
        if self.held + keywords > self.limit:
            raise QuotaExceeded(
                "queued_keywords",
                f"{self.held} keywords are queued and this request holds {keywords}; the "
                f"limit is {self.limit}; retry with backoff",
                self.retry_after_s,
            )
        self.held += keywords
        self.metrics.queued_keywords.set(self.held)
        try:
            yield
        finally:
            self.held -= keywords
            self.metrics.queued_keywords.set(self.held)
