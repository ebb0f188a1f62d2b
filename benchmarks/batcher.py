"""What the batcher itself costs: one request at a time, through it and around it.

A lone request (nobody else is sending) is the batcher's worst case: it can only add to the
latency of a direct call. This times, in one process and one run, the same requests
(validation, mapping, projection and response included) three ways:

- direct: `ModelHolder.compute` called inline, no event loop, no thread;
- batcher, window 0: through `Batcher.submit` with `max_wait_ms=0`, so only the hand-off to
  the compute thread and back is added;
- batcher, default window: the server's default `max_wait_ms`, which a lone request waits out
  in full hoping for company;

and the response cache: what a miss adds (a lookup that finds nothing and the answer stored,
evicting as a full cache does), and what a hit costs instead of the whole path.

    python -m benchmarks batcher --out benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from prometheus_client import CollectorRegistry

from benchmarks.load.scenarios import Scenario
from benchmarks.load.workload import build_requests, ensure_model, keyword_pool
from benchmarks.machine import command_line, cpu_name, emit
from topicproj.models.core.topic_model import TopicModel
from topicproj.service.metrics import ServiceMetrics
from topicproj.service.serving.cache import ResponseCache
from topicproj.service.serving.process import tune_interpreter
from topicproj.service.serving.responses import build_response
from topicproj.service.serving.server import ProjectionServer
from topicproj.service.serving.validation import validate
from topicproj.service.settings import Settings
from topicproj.v1 import topicproj_pb2 as pb

ROUNDS = 3  # each way is timed this many times, interleaved, and the median is reported


def time_cache_miss(server: ProjectionServer, requests: list[pb.ProjectRequest], n: int) -> float:
    """What a miss adds to a request: the lookup and the store, alone (the path between them is
    `direct`'s). A new version per request, so every lookup misses and, once the cache is full,
    every store evicts."""
    cache = ResponseCache(server.settings.response_cache_bytes, server.metrics)
    responses = [
        build_response(r, server.holder.compute([validate(r, server.settings)])[0])
        for r in requests
    ]
    start = time.perf_counter()
    for i in range(n):
        j = i % len(requests)
        key = cache.key(str(i), requests[j])
        assert key is not None and cache.get(key) is None
        cache.put(key, str(i), responses[j])
    return (time.perf_counter() - start) / n


def time_cache_hit(server: ProjectionServer, requests: list[pb.ProjectRequest], n: int) -> float:
    cache = ResponseCache(server.settings.response_cache_bytes, server.metrics)
    version = server.model.version_
    for r in requests:
        key = cache.key(version, r)
        assert key is not None
        cache.put(
            key,
            version,
            build_response(r, server.holder.compute([validate(r, server.settings)])[0]),
        )
    start = time.perf_counter()
    for i in range(n):
        key = cache.key(version, requests[i % len(requests)])
        assert key is not None and cache.get(key) is not None
    return (time.perf_counter() - start) / n


def time_direct(server: ProjectionServer, requests: list[pb.ProjectRequest], n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        r = requests[i % len(requests)]
        projected = server.holder.compute([validate(r, server.settings)])[0]
        build_response(r, projected)
    return (time.perf_counter() - start) / n


async def time_batcher(
    server: ProjectionServer, requests: list[pb.ProjectRequest], n: int, wait_ms: float
) -> float:
    from topicproj.service.serving.batching import Batcher

    batcher = Batcher(
        server.holder.compute,
        record=server.holder.record,
        max_batch_items=256,
        max_wait_ms=wait_ms,
        max_queue_items=65536,
        metrics=server.metrics,
    )
    batcher.start()
    start = time.perf_counter()
    for i in range(n):
        r = requests[i % len(requests)]
        bags = validate(r, server.settings)
        projected = await batcher.submit(bags, len(bags))
        build_response(r, projected)
    elapsed = (time.perf_counter() - start) / n
    await batcher.stop()
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks batcher", description=__doc__)
    p.add_argument("--items", default="1,16,256", help="items per request (default 1,16,256)")
    p.add_argument("--requests", type=int, default=2000, help="requests per timing (default 2000)")
    p.add_argument("--out", type=Path, help="append the results (Markdown) to this file")
    args = p.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    sizes = [int(x) for x in args.items.split(",")]
    torch.set_num_threads(Settings().torch_threads)
    tune_interpreter()  # as a serving process does
    pool = keyword_pool(None)
    model = TopicModel.load(ensure_model(pool), device="cpu")
    server = ProjectionServer(
        model, Settings(port=0, metrics_port=None), ServiceMetrics(CollectorRegistry())
    )
    default_wait = Settings().max_wait_ms
    lines = [
        "```sh",
        command_line("benchmarks.batcher", argv),
        "```",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu_name()}), {platform.system()}, Python "
        f"{platform.python_version()}, torch {torch.__version__}; "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC. One request at a time, "
        f"{args.requests} per timing, median of {ROUNDS} interleaved rounds; microseconds per "
        "request, validation to response.",
        "",
        "| items per request | direct | batcher, window 0 | batcher, window "
        f"{default_wait:g} ms | window 0 / direct | cache miss adds | miss / direct "
        "| cache hit |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        scenario = Scenario(1, size)
        payloads = build_requests(pool, scenario, 0, False, 0, "columnar").payloads
        requests = [pb.ProjectRequest.FromString(x) for x in payloads]
        n = max(50, args.requests // max(1, size // 16))
        ways: dict[str, Callable[[], float]] = {
            "direct": lambda r=requests, n=n: time_direct(server, r, n),
            "zero": lambda r=requests, n=n: asyncio.run(time_batcher(server, r, n, 0.0)),
            "default": lambda r=requests, n=n: asyncio.run(
                time_batcher(server, r, n, default_wait)
            ),
            "miss": lambda r=requests, n=n: time_cache_miss(server, r, n),
            "hit": lambda r=requests, n=n: time_cache_hit(server, r, n),
        }
        timings: dict[str, list[float]] = {k: [] for k in ways}
        for _ in range(ROUNDS):
            for name, way in ways.items():
                timings[name].append(way())
        direct, zero, default, miss, hit = (statistics.median(timings[k]) * 1e6 for k in ways)
        lines.append(
            f"| {size} | {direct:,.0f} | {zero:,.0f} | {default:,.0f} | {zero / direct:.2f}× "
            f"| {miss:,.1f} | {miss / direct:.1%} | {hit:,.1f} |"
        )
    text = "\n".join([*lines, "", ""])
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
