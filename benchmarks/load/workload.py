"""The keywords the load draws from, the model it serves, and its pre-built requests."""

from __future__ import annotations

import math
import os
import random
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from topicproj.oip.v2 import grpc_predict_v2_pb2 as oip
from topicproj.service.client.wire import to_request

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
        from topicproj.models.data.catalog import read_catalog

        keywords = [k for k in read_catalog(path).keywords if k]
        shown = os.path.relpath(path, ROOT) if data is None else str(path)
        return Pool(keywords, shown, tmdb=data is None)
    if data is not None:
        raise SystemExit(f"{data}: no such file")
    from topicproj.models.data.synthetic import make_synthetic_catalog

    keywords = [k for k in make_synthetic_catalog().catalog.keywords if k]
    return Pool(keywords, "synthetic catalog", tmdb=False)


def ensure_model(pool: Pool) -> Path:
    """A cached benchmark model under runs/, trained once (about 10 s on TMDB) if missing."""
    from topicproj.models.core.artifacts import read_model_dir
    from topicproj.models.core.topic_model import TopicModel
    from topicproj.models.errors import ModelDirectoryError

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
    keywords: list[list[list[str]]] = field(default_factory=list)  # each request's items


def infer_request(items: list[list[str]]) -> oip.ModelInferRequest:
    """The Open Inference Protocol request for `items`, its tensors in raw form."""
    flat = [k.encode() for item in items for k in item]
    tensor = oip.ModelInferRequest.InferInputTensor
    return oip.ModelInferRequest(
        model_name="topicproj",
        inputs=[
            tensor(name="keywords", datatype="BYTES", shape=[len(flat)]),
            tensor(name="keyword_counts", datatype="INT32", shape=[len(items)]),
        ],
        raw_input_contents=[
            b"".join(struct.pack("<I", len(k)) + k for k in flat),
            np.array([len(item) for item in items], "<i4").tobytes(),
        ],
    )


def zipf_rows(n_items: int, draws: int, exponent: float, seed: int) -> np.ndarray:
    """`draws` item indices, item of popularity rank r drawn with probability ~ 1 / r^exponent;
    which item has which rank is shuffled by `seed`."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, n_items + 1, dtype=np.float64) ** exponent
    ranked = rng.permutation(n_items)
    return ranked[rng.choice(n_items, size=draws, p=p / p.sum())]


def build_requests(
    pool: Pool,
    scenario: Scenario,
    top_k: int,
    omit_dense: bool,
    seed: int,
    form: str,
    zipf: float | None = None,
) -> RequestPool:
    """Pre-serialised requests, so the clients spend no CPU building or encoding protobufs.

    `form`: columnar (packed in, columns out), messages (one message per item each way), or
    oip (a ModelInferRequest with raw tensors; top_k and omit_dense do not apply).
    `zipf`: items drawn from a Zipf law over the pool (repeated traffic), each with the item's
    own id, so that a request for a popular movie is the same bytes every time it comes.
    """
    order = list(range(len(pool.keywords)))
    random.Random(seed).shuffle(order)
    m = scenario.items
    n = max(scenario.clients, math.ceil(len(order) / m))
    n = min(n, max(scenario.clients, MAX_POOL_ITEMS // m))
    drawn = None
    if zipf:
        # As long a stream as memory allows: the clients walk it once in a short run, so what
        # repeats is what the Zipf law repeats, not the pool wrapping around.
        n = max(n, MAX_POOL_ITEMS // m)
        drawn = zipf_rows(len(order), n * m, zipf, seed).tolist()
    req = RequestPool([], [], [], [])
    for j in range(n):
        if drawn is not None:
            rows = drawn[j * m : (j + 1) * m]
            ids = [f"m{r}" for r in rows]
        else:
            rows = [order[(j * m + t) % len(order)] for t in range(m)]
            # Unique ids per request let the client check it got its own rows back in order.
            ids = [f"{j}:{t}:{r}" for t, r in enumerate(rows)]
        items = [{"id": i, "keywords": pool.keywords[r]} for i, r in zip(ids, rows, strict=True)]
        if form == "oip":
            payload = infer_request([pool.keywords[r] for r in rows]).SerializeToString()
        else:
            payload = to_request(items, top_k, omit_dense, fast=form == "columnar")
            payload = payload.SerializeToString()
        req.payloads.append(payload)
        req.keywords.append([pool.keywords[r] for r in rows])
        req.first_ids.append(ids[0])
        req.last_ids.append(ids[-1])
    return req
