"""The wire forms of a projection: Python items to a `ProjectRequest`, a response to arrays."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.json_format import MessageToDict

from topicproj.v1 import topicproj_pb2 as pb

ItemLike = Sequence[str] | Mapping[str, Any]


@dataclass
class Projections:
    """The projections of one request, row i for item i.

    topics  : float32 array of shape (n_items, n_topics); empty with `omit_dense`
    top     : per item, a list of (topic, score), best first
    """

    model_version: str
    ids: list[str]
    topics: np.ndarray
    top: list[list[tuple[int, float]]]
    known_keywords: np.ndarray
    unknown_keywords: np.ndarray
    active_topics: np.ndarray


SEPARATOR = "\x1f"  # ends every keyword of `ProjectRequest.packed_keywords`


@dataclass
class _Item:
    id: str
    keywords: list[str]
    weights: list[float]


def _items(items: Sequence[ItemLike]) -> list[_Item]:
    out = []
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            if isinstance(item.get("keywords"), str):
                raise TypeError(f"item {i}: 'keywords' is a string; pass a list of keywords")
            out.append(
                _Item(
                    str(item.get("id", "")),
                    list(item.get("keywords", [])),
                    list(item.get("weights", [])),
                )
            )
        elif isinstance(item, str):
            raise TypeError(f"item {i} is a string; pass a list of keywords")
        else:
            out.append(_Item("", list(item), []))
    return out


def to_request(
    items: Sequence[ItemLike],
    top_k: int = 0,
    omit_dense: bool = False,
    model_version: str = "",
    dense_bytes: bool = True,
    columnar: bool = False,
) -> pb.ProjectRequest:
    """The request for `items`. With `columnar`, items go packed (unless a keyword holds the
    separator) and the answer comes back in columns: the fastest form on both sides."""
    parsed = _items(items)
    request = pb.ProjectRequest(
        top_k=top_k,
        omit_dense=omit_dense,
        model_version=model_version,
        dense_bytes=dense_bytes,
        columnar=columnar,
    )
    keywords = [k for item in parsed for k in item.keywords]
    if columnar and not any(SEPARATOR in k for k in keywords):
        request.packed_keywords = "".join(k + SEPARATOR for k in keywords)
        request.packed_counts.extend([len(item.keywords) for item in parsed])
        if any(item.weights for item in parsed):
            for item in parsed:  # a wrong count is the server's to report, with the item
                request.packed_weights.extend(item.weights or [1.0] * len(item.keywords))
    else:
        add = request.items.add
        for item in parsed:
            add(id=item.id, keywords=item.keywords, weights=item.weights)
    return request


def from_response(response: pb.ProjectResponse, ids: Sequence[str] | None = None) -> Projections:
    """The projections of a response; `ids` fills in the item ids a columnar answer omits."""
    rows = response.projections
    if rows or not response.known_keywords:
        n = len(rows)
        ids = [p.id for p in rows]
        known = np.array([p.known_keywords for p in rows], dtype=np.int64)
        unknown = np.array([p.unknown_keywords for p in rows], dtype=np.int64)
        active = np.array([p.active_topics for p in rows], dtype=np.int64)
        top = [[(t.topic, t.score) for t in p.top] for p in rows]
    else:  # columnar
        n = len(response.known_keywords)
        ids = list(ids) if ids is not None else [""] * n
        known = np.array(response.known_keywords, dtype=np.int64)
        unknown = np.array(response.unknown_keywords, dtype=np.int64)
        active = np.array(response.active_topics, dtype=np.int64)
        bounds = np.concatenate([[0], np.cumsum(np.array(response.top_counts, dtype=np.int64))])
        pairs = list(zip(response.top_topics, response.top_scores, strict=True))
        top = [pairs[a:b] for a, b in itertools.pairwise(bounds.tolist())]
        if not response.top_counts:
            top = [[] for _ in range(n)]
    if response.dense:
        # One buffer for the whole response: no per-float Python objects on either side.
        topics = np.frombuffer(response.dense, dtype="<f4").reshape(n, response.topics)
    else:
        width = len(rows[0].topics) if rows else 0
        topics = np.array([p.topics for p in rows], dtype=np.float32).reshape(n, width)
    return Projections(
        model_version=response.model_version,
        ids=ids,
        topics=topics,
        top=top,
        known_keywords=known,
        unknown_keywords=unknown,
        active_topics=active,
    )


def _ids(items: Sequence[ItemLike]) -> list[str]:
    return [str(it.get("id", "")) if isinstance(it, Mapping) else "" for it in items]


def as_dict(message: Any) -> dict[str, Any]:
    """A response as plain Python: field names as in the proto, enums by name, defaults kept."""
    return MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def catalog_chunks(path: Path, chunk_bytes: int) -> Iterator[pb.CatalogChunk]:
    """A file as `UploadCatalog` chunks, the name in the first (an empty file is one chunk)."""
    with open(path, "rb") as f:
        first = True
        while (data := f.read(chunk_bytes)) or first:
            yield pb.CatalogChunk(filename=path.name if first else "", data=data)
            first = False
