"""Dynamic batching: requests from every client share one projection per batch.

Each request's items wait in one queue. The worker takes the oldest request, then keeps adding
queued requests until the batch holds `max_batch_items` items or the oldest has waited
`max_wait_ms`. The batch is projected in a worker thread (torch releases the GIL), so the event
loop keeps accepting requests and gathering the next batch meanwhile. A request is never split:
one larger than `max_batch_items` runs as a batch of its own.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.sparse import SparseBatch

from .errors import DeadlineExpired, QueueFull, ShuttingDown
from .metrics import ServiceMetrics

log = logging.getLogger(__name__)

Compute = Callable[[SparseBatch], np.ndarray]  # (items,) sparse -> (items, topics) float32


@dataclass
class _Pending:
    batch: SparseBatch
    future: asyncio.Future[np.ndarray]
    deadline: float | None  # time.monotonic() seconds
    enqueued: float = field(default_factory=time.monotonic)


def concat(batches: list[SparseBatch]) -> SparseBatch:
    """One CSR batch from several, rows in order."""
    if len(batches) == 1:
        return batches[0]
    nnz = np.cumsum([0] + [len(b.indices) for b in batches[:-1]])
    indptr = [batches[0].indptr] + [
        b.indptr[1:] + n for b, n in zip(batches[1:], nnz[1:], strict=True)
    ]
    return SparseBatch(
        indices=np.concatenate([b.indices for b in batches]),
        weights=np.concatenate([b.weights for b in batches]),
        indptr=np.concatenate(indptr),
        unknown=np.concatenate([b.unknown for b in batches]),
    )


class Batcher:
    def __init__(
        self,
        compute: Compute,
        *,
        max_batch_items: int,
        max_wait_ms: float,
        max_queue_items: int,
        metrics: ServiceMetrics,
        width: int = 0,
    ) -> None:
        self.compute = compute
        self.max_batch_items = max_batch_items
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue_items = max_queue_items
        self.metrics = metrics
        self.width = width  # columns of the result, for requests with no items
        self._queue: collections.deque[_Pending] = collections.deque()
        self._queued_items = 0
        self._wakeup = asyncio.Event()
        # One thread: batches run one after another on the device, in order.
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="project")
        self._worker: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        """Finish everything queued, then stop the worker."""
        self._closing = True
        self._wakeup.set()
        if self._worker is not None:
            await self._worker
        self._executor.shutdown(wait=True)

    async def submit(self, batch: SparseBatch, deadline: float | None = None) -> np.ndarray:
        """Project `batch` with whichever requests share its batch: (items, topics)."""
        if self._closing:
            raise ShuttingDown()
        n = len(batch)
        if n == 0:
            return np.zeros((0, self.width), dtype=np.float32)
        if self._queued_items + n > self.max_queue_items:
            raise QueueFull(self._queued_items, self.max_queue_items)
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(batch, future, deadline))
        self._queued_items += n
        self.metrics.queue_items.set(self._queued_items)
        self._wakeup.set()
        return await future

    def _take_batch(self) -> list[_Pending]:
        """Pop requests until the batch is full; drop those cancelled or past their deadline."""
        taken: list[_Pending] = []
        items = 0
        now = time.monotonic()
        while self._queue:
            head = self._queue[0]
            if taken and items + len(head.batch) > self.max_batch_items:
                break
            self._queue.popleft()
            self._queued_items -= len(head.batch)
            if head.future.done():  # cancelled by the client
                continue
            if head.deadline is not None and now > head.deadline:
                head.future.set_exception(DeadlineExpired())
                continue
            taken.append(head)
            items += len(head.batch)
        self.metrics.queue_items.set(self._queued_items)
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
            # Gather: wait until enough items are queued or the oldest has waited long enough.
            oldest = self._queue[0].enqueued
            while (
                self._queued_items < self.max_batch_items
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
            try:
                await self._project(loop, taken)
            except Exception as e:  # never let one batch stop the worker for everyone
                log.exception("batch of %d requests failed", len(taken))
                for p in taken:
                    if not p.future.done():
                        p.future.set_exception(e)

    async def _project(self, loop: asyncio.AbstractEventLoop, taken: list[_Pending]) -> None:
        batch = concat([p.batch for p in taken])
        start = time.monotonic()
        for p in taken:
            self.metrics.queue_wait.observe(start - p.enqueued)
        try:
            Y = await loop.run_in_executor(self._executor, self.compute, batch)
        except Exception as e:  # the model failed: every request of the batch fails with it
            log.exception("projection of a batch of %d items failed", len(batch))
            for p in taken:
                if not p.future.done():
                    p.future.set_exception(e)
            return
        self.metrics.batch_compute.observe(time.monotonic() - start)
        self.metrics.batch_items.observe(len(batch))
        row = 0
        for p in taken:
            n = len(p.batch)
            if not p.future.done():
                p.future.set_result(Y[row : row + n])
            row += n
