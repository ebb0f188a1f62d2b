"""Overlap the stages of a projection: read ahead in one thread, write behind in another.

Reading (Parquet or JSON decoding), the model and writing (Parquet encoding, zstd) each release
the GIL for most of their time, so on two cores the three run side by side instead of one after
another. Queues are short: memory stays bounded by a few batches, and an error in either thread
is raised in the caller at its next call.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()
DEPTH = 2  # batches in flight between two stages


def read_ahead(produce: Callable[[], Iterator[T]], depth: int = DEPTH) -> Iterator[T]:
    """The items of `produce()`, computed in a thread ahead of the consumer."""
    items: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            for item in produce():
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as e:  # handed to the consumer, which raises it
            failure.append(e)
        finally:
            while not stop.is_set():
                try:
                    items.put(_DONE, timeout=0.1)
                    break
                except queue.Full:
                    continue

    thread = threading.Thread(target=run, name="topicproj-read", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                break
            yield item  # type: ignore[misc]
        if failure:
            raise failure[0]
    finally:
        stop.set()
        thread.join()


class WriteBehind(Generic[T]):
    """Calls `write(item)` for each `put(item)` in a thread, in order; `close()` waits for all.

    An error in the writer is raised by the next `put` or by `close`.
    """

    def __init__(self, write: Callable[[T], None], depth: int = DEPTH) -> None:
        self._write = write
        self._items: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._failure: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="topicproj-write", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._items.get()
            if item is _DONE:
                return
            if not self._failure:
                try:
                    self._write(item)  # type: ignore[arg-type]
                except BaseException as e:
                    self._failure.append(e)

    def put(self, item: T) -> None:
        if self._failure:
            raise self._failure[0]
        self._items.put(item)

    def close(self) -> None:
        """Wait until every item is written; raise the writer's error, if any."""
        if self._thread.is_alive():
            self._items.put(_DONE)
            self._thread.join()
        if self._failure:
            raise self._failure[0]
