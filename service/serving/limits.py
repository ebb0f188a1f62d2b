"""The cost limits of one call, checked before the expensive work, and the queue's keyword budget.

A request's cost is its keywords: each becomes a Python string, a vocabulary lookup and a row
of the batch. `declared_keywords` reads how many a request holds from lengths protobuf already
knows (no string is built), so an oversized request is refused before it is decoded; requests
above `OFF_LOOP_KEYWORDS` are then decoded and validated in a worker thread, so that health
checks and small requests keep the event loop. `KeywordBudget` bounds the keywords waiting in
the batcher's queue across every client, which bounds the server's memory.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

from topicproj.service.errors import InvalidInput, QuotaExceeded, TooLarge
from topicproj.service.metrics import ServiceMetrics
from topicproj.service.settings import Settings
from topicproj.v1 import topicproj_pb2 as pb

# Pages of list calls (AIP-158): a page size of 0 means the default; larger than the maximum
# means the maximum, so a listing costs the same whatever the server has accumulated.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000

# Requests of more keywords than this are decoded and validated off the event loop. Below it,
# the hop to a thread (tens of microseconds) costs more than the work.
OFF_LOOP_KEYWORDS = 2048


def off_loop_keywords(settings: Settings) -> int:
    """Keywords above which a request is decoded in a worker thread. A request the direct path
    will compute on the event loop anyway (up to `direct_inline_keywords`) is decoded there
    too: the hop to a thread and back, and the wait for the GIL the thread holds while it
    decodes, cost more than they free the loop for."""
    inline = settings.direct_inline_keywords if settings.direct_items else 0
    return max(OFF_LOOP_KEYWORDS, inline)


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
        raise TooLarge(
            f"{items} items in one request; the limit is {settings.max_items_per_request}",
            field,
            "max_items_per_request",
        )
    if keywords > settings.max_keywords_per_request:
        raise TooLarge(
            f"{keywords} keywords in one request; the limit is "
            f"{settings.max_keywords_per_request} (split it into smaller requests)",
            field,
            "max_keywords_per_request",
        )


def precheck(request: pb.ProjectRequest, settings: Settings) -> int:
    """Check a Project request's size before decoding it; returns its keywords.

    Only lengths are read here (a list's length, a sum of counts), never the strings."""
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
                "max_queued_keywords",
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


def page_of(rows: Sequence[Any], page_size: int, page_token: str) -> tuple[list[Any], str]:
    """One page of `rows` (sorted by (created, id)) and the token of the next ("" if none).

    The token names the last row returned, not an offset, so rows added meanwhile neither
    repeat nor go missing."""
    if page_size < 0:
        raise InvalidInput(f"{page_size} is negative", "page_size")
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    start = 0
    if page_token:
        try:
            after = json.loads(base64.urlsafe_b64decode(page_token.encode("ascii")))
            key = (float(after[0]), str(after[1]))
        except (ValueError, TypeError, IndexError, KeyError, binascii.Error, UnicodeError):
            raise InvalidInput("not a token this server gave", "page_token") from None
        start = next((i for i, r in enumerate(rows) if (r.created, r.id) > key), len(rows))
    page = list(rows[start : start + size])
    if start + size >= len(rows) or not page:
        return page, ""
    last = page[-1]
    token = base64.urlsafe_b64encode(json.dumps([last.created, last.id]).encode()).decode()
    return page, token
