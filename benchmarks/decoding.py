"""Each step of the request path on its own, the old way against the current one, same run.

For TMDB items (the benchmark model's vocabulary), at 1, 256 and 1,000 items a request, in one
process, interleaved rounds, median microseconds per request:

- decoding each wire form into one flat keyword list: the packed form (one split), the
  `item_list` form (per-keyword comprehension before, C-level map/chain now), the Open
  Inference Protocol's BYTES tensors typed (one decode per element before, one join, decode
  and split now) and raw (the length-prefix walk in Python before, numpy now);
- mapping keywords to ids: the raw-spelling dict probed via `map` in C (what serving uses),
  against Arrow (`normalize_array`, then `index_in`, which rebuilds its hash every call);
- building the columns answer.

    python -m benchmarks.decoding --model runs/bench-model-tmdb50
"""

from __future__ import annotations

import argparse
import statistics
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from topicproj.models.core.topic_model import TopicModel
from topicproj.models.core.vocabulary import normalize_array
from topicproj.models.data.catalog import read_catalog
from topicproj.oip.v2 import grpc_predict_v2_pb2 as oip
from topicproj.service.metrics import ServiceMetrics
from topicproj.service.serving.holder import ModelHolder
from topicproj.service.serving.oip import (
    bytes_tensor_keywords,
    decode_bytes_tensor,
    typed_bytes_keywords,
)
from topicproj.service.serving.responses import build_response
from topicproj.service.serving.validation import Bags, _listed, check_bags, validate
from topicproj.service.settings import Settings
from topicproj.v1 import topicproj_pb2 as pb

SETTINGS = Settings(metrics_port=None)


def old_item_list(request: pb.ProjectRequest) -> list[str]:
    """The item_list form as it was decoded before: a comprehension per keyword (and the
    rest of the old `validate`: counts to numpy, the limits)."""
    items = request.item_list.items
    counts = [len(item.keywords) for item in items]
    keywords = [k for item in items for k in item.keywords]
    given = [item.weights for item in items]
    assert not any(given)
    check_bags(keywords, np.array(counts, np.int64), None, SETTINGS, _listed, "item_list.items")
    return keywords


def old_raw(raw: bytes, expected: int) -> list[str]:
    return [e.decode("utf-8") for e in decode_bytes_tensor(raw, "f", expected)]


def old_typed(elements: list[bytes]) -> list[str]:
    return [e.decode("utf-8") for e in elements]


def arrow_lookup(model: TopicModel, keywords: list[str]) -> np.ndarray:
    vocab = model.vocabulary_
    return vocab._lookup(normalize_array(pa.array(keywords, pa.string())))


def timed(fn: Callable[[], object], repeats: int) -> float:
    t0 = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - t0) / repeats * 1e6


def measure(model: TopicModel, holder: ModelHolder, items: list[list[str]], rounds: int) -> None:
    n = len(items)
    flat = [k for it in items for k in it]
    counts = [len(it) for it in items]
    packed = pb.ProjectRequest(response_form=pb.RESPONSE_FORM_COLUMNS)
    packed.packed.keywords = "".join(k + "\x1f" for k in flat)
    packed.packed.keyword_counts.extend(counts)
    listed = pb.ProjectRequest()
    for it in items:
        listed.item_list.items.add(keywords=it)
    raw = b"".join(struct.pack("<I", len(k.encode())) + k.encode() for k in flat)
    typed = oip.InferTensorContents(bytes_contents=[k.encode() for k in flat])
    # Parsed from bytes, as the server gets them: protobuf's lazily built Python objects.
    packed = pb.ProjectRequest.FromString(packed.SerializeToString())
    listed = pb.ProjectRequest.FromString(listed.SerializeToString())
    typed = oip.InferTensorContents.FromString(typed.SerializeToString())
    assert old_raw(raw, len(flat)) == bytes_tensor_keywords(raw, "f", len(flat)) == flat
    assert old_item_list(listed) == validate(listed, SETTINGS).keywords == flat
    bags = Bags(flat, np.array(counts), None)
    (projected,) = holder.compute([bags])
    assert np.array_equal(
        arrow_lookup(model, flat), np.maximum(model.vocabulary_.lookup(flat), -1)
    ), "Arrow and the dict disagree"
    repeats = max(20, 20000 // max(len(flat), 1))
    steps: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "packed form: validate": (
            lambda: validate(packed, SETTINGS),
            lambda: validate(packed, SETTINGS),
        ),
        "item_list form: validate": (
            lambda: old_item_list(listed),
            lambda: validate(listed, SETTINGS),
        ),
        "OIP typed BYTES": (
            lambda: old_typed(list(typed.bytes_contents)),
            lambda: typed_bytes_keywords(list(typed.bytes_contents), "f"),
        ),
        "OIP raw BYTES": (
            lambda: old_raw(raw, len(flat)),
            lambda: bytes_tensor_keywords(raw, "f", len(flat)),
        ),
        "keyword ids: Arrow (before) / dict probe (now)": (
            lambda: arrow_lookup(model, flat),
            lambda: model.vocabulary_.lookup(flat),
        ),
        "map + project (compute), for scale": (
            lambda: holder.compute([bags]),
            lambda: holder.compute([bags]),
        ),
        "columns answer": (
            lambda: build_response(packed, projected),
            lambda: build_response(packed, projected),
        ),
    }
    for name, (before, now) in steps.items():
        b, a = [], []
        for _ in range(rounds):  # interleaved: both see the same load
            b.append(timed(before, repeats))
            a.append(timed(now, repeats))
        mb, ma = statistics.median(b), statistics.median(a)
        print(f"| {n} | {name} | {mb:,.1f} | {ma:,.1f} | {ma / mb:.2f}× |", flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data", default="../shared/data/tmdb_5000_movies.csv.zip")
    p.add_argument("--items", default="1,256,1000")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    model = TopicModel.load(args.model, device="cpu")
    pool = [k for k in read_catalog(args.data).keywords if k]
    holder = ModelHolder(model, ServiceMetrics())
    print(
        "| items | step | before µs | now µs | now / before |\n|---:|---|---:|---:|---:|",
        flush=True,
    )
    for n in (int(x) for x in args.items.split(",")):
        measure(model, holder, pool[:n], args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
