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

    topics  : float32 array of shape (n_items, n_topics); (0, n_topics) with `omit_topics`
    top     : per item, a list of (topic, score), best first
    top_labels : per item, the labels of its `top` topics, in the same order
    """

    model_version: str
    ids: list[str]
    topics: np.ndarray
    top: list[list[tuple[int, float]]]
    known_keywords: np.ndarray
    unknown_keywords: np.ndarray
    active_topics: np.ndarray
    # With `explain`: per item, {"active_topics": [...], "closed_topics": [...]}, each topic a
    # dict named as `TopicExplanation` in the proto.
    explanations: list[dict[str, Any]] | None = None
    top_labels: list[list[str]] | None = None


SEPARATOR = "\x1f"  # ends every keyword of `PackedItems.keywords`


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
    omit_topics: bool = False,
    model_version: str = "",
    fast: bool = True,
    explain: int | None = None,
) -> pb.ProjectRequest:
    """The request for `items`. With `fast` (the default), the items go packed (unless a
    keyword holds the separator) and the answer comes back as columns, the cheapest form on both
    sides; without it, the portable forms: one message per item, each way."""
    parsed = _items(items)
    request = pb.ProjectRequest(
        top_k=top_k,
        omit_topics=omit_topics,
        model_version=model_version,
        response_form=pb.RESPONSE_FORM_COLUMNS if fast else pb.RESPONSE_FORM_ITEMS,
    )
    if explain is not None:
        request.explain = True
        request.explain_keywords = explain
    keywords = [k for item in parsed for k in item.keywords]
    if fast and not any(SEPARATOR in k for k in keywords):
        packed = request.packed
        packed.SetInParent()
        packed.keywords = "".join(k + SEPARATOR for k in keywords)
        packed.keyword_counts.extend([len(item.keywords) for item in parsed])
        if any(item.weights for item in parsed):
            for item in parsed:  # a wrong count is the server's to report, with the item
                packed.weights.extend(item.weights or [1.0] * len(item.keywords))
    else:
        request.item_list.SetInParent()
        add = request.item_list.items.add
        for item in parsed:
            add(id=item.id, keywords=item.keywords, weights=item.weights)
    return request


def from_response(response: pb.ProjectResponse, ids: Sequence[str] | None = None) -> Projections:
    """The projections of a response; `ids` fills in the item ids a columns answer omits."""
    width = response.topic_count
    if response.WhichOneof("output") == "columns":
        c = response.columns
        n = len(c.known_keywords)
        ids = list(ids) if ids is not None else [""] * n
        known = np.array(c.known_keywords, dtype=np.int64)
        unknown = np.array(c.unknown_keywords, dtype=np.int64)
        active = np.array(c.active_topics, dtype=np.int64)
        bounds = np.concatenate([[0], np.cumsum(np.array(c.top_counts, dtype=np.int64))])
        pairs = list(zip(c.top_topics, c.top_scores, strict=True))
        spans = list(itertools.pairwise(bounds.tolist()))
        top = [pairs[a:b] for a, b in spans]
        top_labels = [list(c.top_labels[a:b]) for a, b in spans]
        if not c.top_counts:
            top = [[] for _ in range(n)]
            top_labels = [[] for _ in range(n)]
        # One buffer for the whole response: no per-float Python objects on either side.
        topics = np.frombuffer(c.topics, dtype="<f4").reshape(n if c.topics else 0, width)
        explained = list(c.explanations)
    else:
        rows = response.projection_list.projections
        n = len(rows)
        ids = [p.id for p in rows]
        known = np.array([p.known_keywords for p in rows], dtype=np.int64)
        unknown = np.array([p.unknown_keywords for p in rows], dtype=np.int64)
        active = np.array([p.active_topics for p in rows], dtype=np.int64)
        top = [[(t.topic, t.score) for t in p.top] for p in rows]
        top_labels = [[t.label for t in p.top] for p in rows]
        dense = n and len(rows[0].topics)
        topics = np.array([p.topics for p in rows], dtype=np.float32).reshape(
            n if dense else 0, width
        )
        explained = [p.explanation for p in rows if p.HasField("explanation")]
    return Projections(
        model_version=response.model_version,
        ids=ids,
        topics=topics,
        top=top,
        known_keywords=known,
        unknown_keywords=unknown,
        active_topics=active,
        explanations=[as_dict(e) for e in explained] if explained else None,
        top_labels=top_labels,
    )


def _ids(items: Sequence[ItemLike]) -> list[str]:
    return [str(it.get("id", "")) if isinstance(it, Mapping) else "" for it in items]


def as_dict(message: Any) -> dict[str, Any]:
    """A response as plain Python: field names as in the proto, enums by name, defaults kept,
    keys in the proto's field order (MessageToDict puts fields left at their default last)."""
    plain = MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
    return _in_field_order(plain, message.DESCRIPTOR)


def _well_known(descriptor: Any) -> bool:
    return str(descriptor.full_name).startswith("google.protobuf.")


def _in_field_order(value: dict[str, Any], descriptor: Any) -> dict[str, Any]:
    out = {}
    for f in descriptor.fields:
        if f.name not in value:
            continue
        v = value[f.name]
        kind = f.message_type
        # Maps and well-known types (Timestamp, Struct) have JSON forms of their own.
        if kind is not None and not kind.GetOptions().map_entry and not _well_known(kind):
            if isinstance(v, list):
                v = [_in_field_order(x, kind) if isinstance(x, dict) else x for x in v]
            elif isinstance(v, dict):
                v = _in_field_order(v, kind)
        out[f.name] = v
    # Anything the descriptor does not name (well-known types' JSON forms) keeps its place.
    return out | {k: v for k, v in value.items() if k not in out}


def catalog_chunks(path: Path, chunk_bytes: int) -> Iterator[pb.UploadCatalogRequest]:
    """A file as `UploadCatalog` messages, the name in the first (an empty file is one)."""
    with open(path, "rb") as f:
        first = True
        while (data := f.read(chunk_bytes)) or first:
            yield pb.UploadCatalogRequest(filename=path.name if first else "", data=data)
            first = False


def start_training_request(
    *,
    catalog_path: str = "",
    upload_id: str = "",
    format: str = "",
    activate_on_success: bool = False,
    parent_version: str = "",
    from_scratch: bool = False,
    add_topics: int = 0,
    **options: Any,
) -> pb.StartTrainingRequest:
    """`options` are `TrainingOptions` fields (topics, activation, l1, seed, ...); those not
    given take the parent's values, or the server's defaults with `from_scratch`. The parent
    is `parent_version`, or the served version when it is empty; `add_topics` new topics grow
    on top of its. A misspelt option raises ValueError before anything is sent."""
    request = pb.StartTrainingRequest(
        format=format,
        activate_on_success=activate_on_success,
        parent_version=parent_version,
        from_scratch=from_scratch,
        add_topics=add_topics,
        options=pb.TrainingOptions(**options),
    )
    if upload_id:
        request.upload_id = upload_id
    else:
        request.catalog_path = catalog_path
    return request
