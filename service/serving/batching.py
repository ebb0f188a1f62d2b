"""Dynamic batching: requests from every client share one projection per batch.

Each request's items wait in one queue. The worker takes the oldest request, then keeps adding
queued requests until the batch holds `max_batch_items` items or the oldest has waited
`max_wait_ms`. The batch is computed in a worker thread, so the event loop keeps accepting
requests and gathering the next batch meanwhile. A request is never split: one larger than
`max_batch_items` runs as a batch of its own.

The batcher does not know what a request holds: `compute` takes the queued requests of one
batch and returns one result per request. That lets the server map the keywords of the whole
batch in one vectorised call instead of one call per request.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from topicproj.service.errors import DeadlineExpired, QueueFull, ShuttingDown
from topicproj.service.metrics import ServiceMetrics

from .tracing import Tracing

log = logging.getLogger(__name__)

Work = TypeVar("Work")  # what one request asks for
Result = TypeVar("Result")  # what it gets back


@dataclass
class _Pending(Generic[Work, Result]):
    work: Work
    items: int
    future: asyncio.Future[Result]
    deadline: float | None  # time.monotonic() seconds
    span: Any = None  # the request's trace span, when tracing is on
    enqueued: float = field(default_factory=time.monotonic)
    enqueued_ns: int = field(default_factory=time.time_ns)  # wall clock, for traces


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and (error := future.exception()) is not None:
        log.error("recording a batch failed: %r", error)


@dataclass
class QueueCount:
    """Items queued across every batcher that shares it: the lanes of one server have one
    `max_queue_items` and one `topicproj_queue_items` gauge between them, not one each."""

    items: int = 0


class Batcher(Generic[Work, Result]):
    def __init__(
        self,
        compute: Callable[[list[Work]], list[Result]],
        *,
        record: Callable[[list[Result]], None] | None = None,
        max_batch_items: int,
        max_wait_ms: float,
        max_queue_items: int,
        metrics: ServiceMetrics,
        wait_when_idle: bool = False,
        retry_delay_ms: float = 100.0,
        tracing: Tracing | None = None,
        after: Callable[[list[Work], list[Result]], None] | None = None,
        direct_items: int = 0,
        direct_inline_keywords: int = 0,
        queued: QueueCount | None = None,
    ) -> None:
        self.compute = compute  # one result per request, in order; runs in the worker thread
        # Bookkeeping of a computed batch, run in the worker thread once its requests have
        # their results: after them, and before the next batch's compute. `record` sees the
        # results (metrics); `after` the requests too (the traffic profile needs the keywords).
        self.record = record
        self.after = after
        self.max_batch_items = max_batch_items
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue_items = max_queue_items
        self.wait_when_idle = wait_when_idle
        self.retry_delay = retry_delay_ms / 1000.0  # what a refused client is asked to wait
        self.tracing = tracing
        self.metrics = metrics
        # The direct path (see `submit`): 0 turns it off.
        self.direct_items = direct_items
        self.direct_inline_keywords = direct_inline_keywords
        self._queue: collections.deque[_Pending[Work, Result]] = collections.deque()
        self._queued_items = 0  # this batcher's own
        self._queued = queued if queued is not None else QueueCount()  # with the other lanes
        self._wakeup = asyncio.Event()
        # One thread: batches run one after another on the device, in order.
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="project")
        self._worker: asyncio.Task[None] | None = None
        self._closing = False
        self._last_batch_requests = 1

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        """Finish everything queued, then stop the worker."""
        self._closing = True
        self._wakeup.set()
        if self._worker is not None:
            await self._worker
        self._executor.shutdown(wait=True)

    async def submit(
        self, work: Work, items: int, deadline: float | None = None, cost: int = 0
    ) -> Result:
        """Compute `work` (of `items` items, at least 1, and `cost` keywords) in a batch with
        whichever requests share it, or at once when it fills most of a batch on its own."""
        if self._closing:
            raise ShuttingDown()
        n = items
        if self.direct_items and n >= self.direct_items:
            return await self._direct(work, n, deadline, cost)
        if self._queued.items + n > self.max_queue_items:
            raise QueueFull(self._queued.items, self.max_queue_items, self.retry_delay)
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        span = self.tracing.current() if self.tracing is not None else None
        self._queue.append(_Pending(work, n, future, deadline, span))
        self._queued_items += n
        self._queued.items += n
        self.metrics.queue_items.set(self._queued.items)
        self._wakeup.set()
        return await future

    async def _direct(self, work: Work, n: int, deadline: float | None, cost: int) -> Result:
        """The direct path: a request that would fill most of a batch alone gains nothing
        from waiting for company, and pays for the queue, the batcher's task and (when small
        enough to compute on the event loop) the hand-off to the compute thread and back.

        The answer is the one the batch would have given (batch invariance); the metrics and
        the traffic profile see it as a batch of one request, recorded after the answer."""
        if deadline is not None and time.monotonic() > deadline:
            raise DeadlineExpired()
        loop = asyncio.get_running_loop()
        start = time.monotonic()
        start_ns = time.time_ns()
        span = self.tracing.current() if self.tracing is not None else None
        try:
            if cost <= self.direct_inline_keywords:
                results = self.compute([work])
            else:
                results = await loop.run_in_executor(self._executor, self.compute, [work])
        except Exception:
            log.exception("projection of a direct request of %d items failed", n)
            raise
        if len(results) != 1:
            raise RuntimeError(f"compute gave {len(results)} results for 1 request")
        self.metrics.queue_wait.observe(0.0)
        self.metrics.batch_compute.observe(time.monotonic() - start)
        self.metrics.batch_items.observe(n)
        if self.tracing is not None:
            self.tracing.batch([span], [start_ns], start_ns, time.time_ns(), n)
        if self.record is not None or self.after is not None:
            # After this request has its answer: the loop runs it once the response is on
            # its way, and it never delays the answer it describes.
            loop.call_soon(self._bookkeeping_logged, [work], results)
        return results[0]

    def _bookkeeping_logged(self, works: list[Work], results: list[Result]) -> None:
        try:
            self._bookkeeping(works, results)
        except Exception as e:  # bookkeeping never fails a request or the loop
            log.error("recording a batch failed: %r", e)

    def _take_batch(self) -> list[_Pending[Work, Result]]:
        """Pop requests until the batch is full; drop those cancelled or past their deadline."""
        taken: list[_Pending[Work, Result]] = []
        items = 0
        now = time.monotonic()
        while self._queue:
            head = self._queue[0]
            if taken and items + head.items > self.max_batch_items:
                break
            self._queue.popleft()
            self._queued_items -= head.items
            self._queued.items -= head.items
            if head.future.done():  # cancelled by the client
                continue
            if head.deadline is not None and now > head.deadline:
                head.future.set_exception(DeadlineExpired())
                continue
            taken.append(head)
            items += head.items
        self.metrics.queue_items.set(self._queued.items)
        return taken

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # Gather: wait until enough items are queued or the oldest has waited long enough,
            # but only while requests are arriving together (the last batch merged several).
            # A client on its own would otherwise wait out the whole window on every request
            # for company that never comes; the first batch of a burst goes at once, and the
            # burst piles up behind it.
            oldest = self._queue[0].enqueued
            while (
                (self._last_batch_requests > 1 or self.wait_when_idle)
                and self._queued_items < self.max_batch_items
                and not self._closing
                and (remaining := oldest + self.max_wait - time.monotonic()) > 0
            ):
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except TimeoutError:
                    break
            taken = self._take_batch()
            if not taken:
                continue
            self._last_batch_requests = len(taken)
            await self._project(loop, taken)

    async def _project(
        self, loop: asyncio.AbstractEventLoop, taken: list[_Pending[Work, Result]]
    ) -> None:
        start = time.monotonic()
        start_ns = time.time_ns()
        n_items = sum(p.items for p in taken)
        try:
            for p in taken:
                self.metrics.queue_wait.observe(start - p.enqueued)
            results = await loop.run_in_executor(
                self._executor, self.compute, [p.work for p in taken]
            )
            if len(results) != len(taken):
                raise RuntimeError(f"compute gave {len(results)} results for {len(taken)} requests")
            self.metrics.batch_compute.observe(time.monotonic() - start)
            self.metrics.batch_items.observe(n_items)
            if self.tracing is not None:
                self.tracing.batch(
                    [p.span for p in taken],
                    [p.enqueued_ns for p in taken],
                    start_ns,
                    time.time_ns(),
                    n_items,
                )
        except Exception as e:  # never let one batch stop the worker for everyone: each of its
            # requests fails with the error, and the worker goes on with the next batch
            log.exception("projection of a batch of %d items failed", n_items)
            for p in taken:
                if not p.future.done():
                    p.future.set_exception(e)
            return
        for p, result in zip(taken, results, strict=True):
            if not p.future.done():
                p.future.set_result(result)
        if (self.record is not None or self.after is not None) and results:
            # Not awaited: the waiting requests resume now. The one worker thread runs it
            # before the next batch, so the bookkeeping sees batches in order.
            works = [p.work for p in taken]
            recorded = loop.run_in_executor(self._executor, self._bookkeeping, works, results)
            recorded.add_done_callback(_log_failure)

    def _bookkeeping(self, works: list[Work], results: list[Result]) -> None:
        if self.record is not None:
            self.record(results)
        if self.after is not None:
            self.after(works, results)


class Lanes(Generic[Work, Result]):
    """Two batchers: small requests never queue behind large ones.

    A request of at most `threshold` keywords (its cost) goes to the small lane, any other to
    the large lane; each lane computes in a thread of its own, so a small request waits for
    its own batch only, not for a large batch to finish computing.
    """

    def __init__(
        self, small: Batcher[Work, Result], large: Batcher[Work, Result], threshold: int
    ) -> None:
        self.small = small
        self.large = large
        self.threshold = threshold

    def start(self) -> None:
        self.small.start()
        self.large.start()

    async def stop(self) -> None:
        await asyncio.gather(self.small.stop(), self.large.stop())

    async def submit(
        self, work: Work, items: int, deadline: float | None = None, cost: int = 0
    ) -> Result:
        lane = self.small if cost <= self.threshold else self.large
        return await lane.submit(work, items, deadline, cost)
