"""The keywords the load draws from, the model it serves, and its pre-built requests."""

from __future__ import annotations

import math
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from service.client.wire import to_request

from .scenarios import MAX_POOL_ITEMS, ROOT, RUNS, TMDB, Scenario


@dataclass
class Pool:
    keywords: list[list[str]]
    source: str
    tmdb: bool


def keyword_pool(data: Path | None) -> Pool:
    """Items to send: TMDB (items with keywords only) if present, else the synthetic catalog."""
    path = data if data is not None else TMDB
    if path.exists():
        from models.data.catalog import read_catalog

        keywords = [k for k in read_catalog(path).keywords if k]
        shown = os.path.relpath(path, ROOT) if data is None else str(path)
        return Pool(keywords, shown, tmdb=data is None)
    if data is not None:
        raise SystemExit(f"{data}: no such file")
    from models.data.synthetic import make_synthetic_catalog

    keywords = [k for k in make_synthetic_catalog().catalog.keywords if k]
    return Pool(keywords, "synthetic catalog", tmdb=False)


def ensure_model(pool: Pool) -> Path:
    """A cached benchmark model under runs/, trained once (about 10 s on TMDB) if missing."""
    from models.core.artifacts import read_model_dir
    from models.core.topic_model import TopicModel
    from models.errors import ModelDirectoryError

    path = RUNS / ("bench-model-tmdb50" if pool.tmdb else "bench-model-synthetic12")
    try:
        read_model_dir(path)  # verifies every checksum, so a half-written cache is retrained
        return path
    except ModelDirectoryError as e:
        if path.exists():
            print(f"retraining the benchmark model: {e}", file=sys.stderr)
    print(f"training the benchmark model into {path} ...", file=sys.stderr, flush=True)
    if pool.tmdb:
        model = TopicModel(50, device="cpu").fit(pool.keywords)
    else:
        model = TopicModel(12, min_df=2, device="cpu").fit(pool.keywords)
    model.save(path, overwrite=True)  # written to a temp dir and renamed: never half a model
    return path


@dataclass
class RequestPool:
    payloads: list[bytes]
    first_ids: list[str]
    last_ids: list[str]


def build_requests(
    pool: Pool, scenario: Scenario, top_k: int, omit_dense: bool, seed: int, columnar: bool
) -> RequestPool:
    """Pre-serialised requests, so the clients spend no CPU building or encoding protobufs."""
    order = list(range(len(pool.keywords)))
    random.Random(seed).shuffle(order)
    m = scenario.items
    n = max(scenario.clients, math.ceil(len(order) / m))
    n = min(n, max(scenario.clients, MAX_POOL_ITEMS // m))
    req = RequestPool([], [], [])
    for j in range(n):
        rows = [order[(j * m + t) % len(order)] for t in range(m)]
        # Unique ids per request let the client check that it got its own rows back in order.
        ids = [f"{j}:{t}:{r}" for t, r in enumerate(rows)]
        items = [{"id": i, "keywords": pool.keywords[r]} for i, r in zip(ids, rows, strict=True)]
        request = to_request(items, top_k, omit_dense, columnar=columnar)
        req.payloads.append(request.SerializeToString())
        req.first_ids.append(ids[0])
        req.last_ids.append(ids[-1])
    return req
