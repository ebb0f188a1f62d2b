"""The batcher on its own: which requests share a batch, and what happens when things go wrong."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from topicproj.service.errors import DeadlineExpired, QueueFull, ShuttingDown
from topicproj.service.metrics import ServiceMetrics
from topicproj.service.serving.batching import Batcher, Lanes, QueueCount


class Recorder:
    """A compute function that doubles numbers and remembers every batch it was given."""

    def __init__(self) -> None:
        self.batches: list[list[list[int]]] = []
        self.fail_next = False
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()

    def __call__(self, works: list[list[int]]) -> list[list[int]]:
        self.started.set()
        self.release.wait(10)
        self.batches.append(works)
        if self.fail_next:
            self.fail_next = False
            raise ValueError("model exploded")
        return [[2 * x for x in w] for w in works]


def make(compute, **kwargs) -> Batcher:  # type: ignore[no-untyped-def]
    config = {"max_batch_items": 8, "max_wait_ms": 50.0, "max_queue_items": 64} | kwargs
    return Batcher(compute, metrics=ServiceMetrics(CollectorRegistry()), **config)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_requests_share_batches_in_order_and_get_their_own_rows():
    async def main() -> tuple[Recorder, list[list[int]]]:
        compute = Recorder()
        batcher = make(compute)
        batcher.start()
        works = [[i] * n for i, n in enumerate([3, 3, 2, 5, 1])]
        results = await asyncio.gather(*(batcher.submit(w, len(w)) for w in works))
        await batcher.stop()
        return compute, results

    compute, results = run(main())
    assert results == [[2 * i] * n for i, n in enumerate([3, 3, 2, 5, 1])]
    # 3 + 3 + 2 fill a batch of 8; 5 + 1 make the next one
    assert [[len(w) for w in batch] for batch in compute.batches] == [[3, 3, 2], [5, 1]]


def test_a_request_larger_than_a_batch_runs_alone_and_a_lone_request_is_not_stranded():
    async def main() -> Recorder:
        compute = Recorder()
        batcher = make(compute, max_wait_ms=1.0)
        batcher.start()
        assert await batcher.submit([1] * 20, 20) == [2] * 20
        assert await batcher.submit([7], 1) == [14]  # nothing else comes; the window closes
        await batcher.stop()
        return compute

    assert [[len(w) for w in b] for b in run(main()).batches] == [[20], [1]]


def test_a_failing_batch_fails_its_requests_and_the_next_batch_still_runs():
    async def main() -> None:
        compute = Recorder()
        compute.fail_next = True
        batcher = make(compute)
        batcher.start()
        first = await asyncio.gather(
            batcher.submit([1], 1), batcher.submit([2], 1), return_exceptions=True
        )
        assert all(isinstance(r, ValueError) and "exploded" in str(r) for r in first)
        assert await batcher.submit([3], 1) == [6]
        await batcher.stop()

    run(main())


def test_compute_must_answer_every_request():
    async def main() -> None:
        batcher = make(lambda works: works[:1])
        batcher.start()
        results = await asyncio.gather(
            batcher.submit([1], 1), batcher.submit([2], 1), return_exceptions=True
        )
        assert all(isinstance(r, RuntimeError) and "2 requests" in str(r) for r in results)
        await batcher.stop()

    run(main())


def test_cancelled_and_expired_requests_are_dropped_before_compute():
    async def main() -> Recorder:
        compute = Recorder()
        compute.release.clear()  # hold the first batch inside compute
        batcher = make(compute, max_batch_items=1)
        batcher.start()
        busy = asyncio.ensure_future(batcher.submit([1], 1))
        await asyncio.get_running_loop().run_in_executor(None, compute.started.wait, 10)
        cancelled = asyncio.ensure_future(batcher.submit([2], 1))
        expired = asyncio.ensure_future(batcher.submit([3], 1, deadline=time.monotonic() + 0.01))
        kept = asyncio.ensure_future(batcher.submit([4], 1))
        await asyncio.sleep(0.05)  # past the deadline, all three queued
        cancelled.cancel()
        compute.release.set()
        assert await busy == [2] and await kept == [8]
        with pytest.raises(DeadlineExpired):
            await expired
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await batcher.stop()
        return compute

    assert run(main()).batches == [[[1]], [[4]]]


def test_the_event_loop_keeps_running_while_a_batch_computes():
    async def main() -> None:
        compute = Recorder()
        compute.release.clear()
        batcher = make(compute)
        batcher.start()
        pending = asyncio.ensure_future(batcher.submit([1], 1))
        await asyncio.get_running_loop().run_in_executor(None, compute.started.wait, 10)
        ticks = 0
        for _ in range(5):  # the loop is free: other coroutines run while compute is blocked
            await asyncio.sleep(0)
            ticks += 1
        assert ticks == 5 and not pending.done()
        compute.release.set()
        assert await pending == [2]
        await batcher.stop()

    run(main())


def test_a_full_queue_refuses_at_once_and_a_stopped_batcher_refuses_new_work():
    async def main() -> None:
        compute = Recorder()
        compute.release.clear()
        batcher = make(compute, max_batch_items=4, max_queue_items=6)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit([1] * 4, 4))
        await asyncio.get_running_loop().run_in_executor(None, compute.started.wait, 10)
        queued = asyncio.ensure_future(batcher.submit([2] * 5, 5))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull):
            await batcher.submit([3] * 2, 2)  # 5 queued + 2 > 6
        stopping = asyncio.ensure_future(batcher.stop())
        await asyncio.sleep(0)
        with pytest.raises(ShuttingDown):
            await batcher.submit([4], 1)
        compute.release.set()
        await stopping  # stop() finishes what was queued
        assert await first == [2] * 4 and await queued == [4] * 5

    run(main())


def test_the_lanes_share_one_queue_limit_and_one_gauge():
    async def main() -> None:
        registry = CollectorRegistry()
        metrics = ServiceMetrics(registry)
        queued = QueueCount()
        small, large = Recorder(), Recorder()
        for compute in (small, large):
            compute.release.clear()
        config = {"max_batch_items": 4, "max_wait_ms": 50.0, "max_queue_items": 6}
        lanes = Lanes(
            Batcher(small, metrics=metrics, queued=queued, **config),
            Batcher(large, metrics=metrics, queued=queued, **config),
            threshold=2,
        )
        lanes.start()
        loop = asyncio.get_running_loop()
        busy = [asyncio.ensure_future(lanes.submit([1], 1, cost=1))]  # small lane computes
        busy.append(asyncio.ensure_future(lanes.submit([1] * 4, 4, cost=4)))  # large lane
        for compute in (small, large):
            await loop.run_in_executor(None, compute.started.wait, 10)
        waiting = [
            asyncio.ensure_future(lanes.submit([2] * 3, 3, cost=2)),  # queued in the small lane
            asyncio.ensure_future(lanes.submit([3] * 3, 3, cost=3)),  # and in the large one
        ]
        await asyncio.sleep(0)
        # 6 items queued across the two lanes: a third request is refused in either lane,
        # and the gauge shows both lanes' items, not whichever lane moved last.
        assert registry.get_sample_value("topicproj_queue_items") == 6
        for cost in (1, 5):
            with pytest.raises(QueueFull):
                await lanes.submit([4], 1, cost=cost)
        small.release.set()
        large.release.set()
        assert [len(r) for r in await asyncio.gather(*busy, *waiting)] == [1, 4, 3, 3]
        await lanes.stop()
        assert registry.get_sample_value("topicproj_queue_items") == 0 and queued.items == 0

    run(main())


def test_a_lone_client_is_not_held_for_the_window_but_a_burst_is_gathered():
    async def main() -> Recorder:
        compute = Recorder()
        batcher = make(compute, max_batch_items=4, max_wait_ms=60_000.0)
        batcher.start()
        for x in range(3):  # one at a time: never held for a minute waiting for company
            assert await asyncio.wait_for(batcher.submit([x], 1), 10) == [2 * x]
        compute.release.clear()
        first = asyncio.ensure_future(batcher.submit([9], 1))
        await asyncio.get_running_loop().run_in_executor(None, compute.started.wait, 10)
        burst = [asyncio.ensure_future(batcher.submit([x], 1)) for x in range(3)]
        await asyncio.sleep(0.05)  # queued behind the batch being computed
        compute.release.set()
        await asyncio.gather(first, *burst)
        # Requests now arrive together, so the batcher waits for a full batch (4 items).
        early = [asyncio.ensure_future(batcher.submit([x], 1)) for x in range(2)]
        await asyncio.sleep(0.05)  # the two early ones are held for company...
        late = [asyncio.ensure_future(batcher.submit([x], 1)) for x in range(2)]
        await asyncio.wait_for(asyncio.gather(*early, *late), 10)  # ...and leave with it
        await batcher.stop()
        return compute

    sizes = [len(b) for b in run(main()).batches]
    assert sizes == [1, 1, 1, 1, 3, 4]


def test_wait_when_idle_holds_even_a_lone_request_for_company():
    async def main() -> Recorder:
        compute = Recorder()
        batcher = make(compute, max_batch_items=2, max_wait_ms=60_000.0, wait_when_idle=True)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit([1], 1))
        await asyncio.sleep(0.05)
        assert not first.done()  # held, hoping for company
        second = await asyncio.wait_for(batcher.submit([2], 1), 10)  # which fills the batch
        assert await first == [2] and second == [4]
        await batcher.stop()
        return compute

    assert run(main()).batches == [[[1], [2]]]


def test_a_request_that_fills_most_of_a_batch_skips_the_queue_and_small_ones_still_coalesce():
    async def main() -> tuple[Recorder, Batcher, list[list[int]], float, list[str]]:
        compute = Recorder()
        recorded: list[str] = []
        threads: list[str] = []

        def compute_where(works: list[list[int]]) -> list[list[int]]:
            threads.append(threading.current_thread().name)
            return compute(works)

        # A classic batcher (every request held 2 s for company) with the direct path from 6.
        batcher = make(
            compute_where,
            max_wait_ms=2000.0,
            wait_when_idle=True,
            direct_items=6,
            direct_inline_keywords=100,
            record=lambda results: recorded.append(f"record {len(results)}"),
        )
        batcher.start()
        t0 = time.monotonic()
        big = await batcher.submit([5] * 6, 6, cost=12)  # inline, on the loop
        elapsed = time.monotonic() - t0
        await asyncio.sleep(0)  # the bookkeeping follows the answer on the loop
        larger = await batcher.submit([4] * 7, 7, cost=1000)  # direct, in the lane's thread
        # Two small ones together: the batcher gathers them into one batch.
        small = await asyncio.gather(batcher.submit([1, 1], 2), batcher.submit([3], 1))
        await batcher.stop()
        assert larger == [8] * 7
        return compute, batcher, [big, *small], elapsed, [*threads, *recorded]

    compute, batcher, results, elapsed, log = run(main())
    assert results == [[10] * 6, [2, 2], [6]]
    assert elapsed < 1.0  # not held for the 2 s window
    assert [[len(w) for w in b] for b in compute.batches] == [[6], [7], [2, 1]]
    assert log[0] == threading.main_thread().name  # the inline one computed on the loop
    assert log[1].startswith("project") and log[2].startswith("project")
    assert log.count("record 1") == 2 and "record 2" in log
    assert batcher.metrics.batch_items._sum.get() == 16  # every request counted in a batch
