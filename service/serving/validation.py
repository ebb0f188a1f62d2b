"""Request validation: protobuf in, one flat list of keywords out, every limit checked.

Mapping keywords to ids is left to the batch (`ModelHolder.compute`), where one vectorised
call serves every request of the batch. The checks here run over whole requests with C-level
builtins and numpy; only a request that fails one is searched for the item at fault.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.errors import InvalidInput
from service.settings import Settings
from topicproj.v1 import topicproj_pb2 as pb

SEPARATOR = "\x1f"  # ends every keyword of `ProjectRequest.packed_keywords`


@dataclass
class Bags:
    """The keyword bags of one request: item i holds the next `counts[i]` keywords."""

    keywords: list[str]  # every keyword of every item, in item order
    counts: np.ndarray  # (items,) int64
    weights: np.ndarray | None  # (keywords,) float32; None: every weight is 1
    model_version: str = ""  # the version the request asked for, if any

    def __len__(self) -> int:
        return len(self.counts)


def _item_of(counts: np.ndarray, keyword: int) -> int:
    """The item that holds the flat keyword at index `keyword`."""
    return int(np.searchsorted(np.cumsum(counts), keyword, side="right"))


def _unpack(request: pb.ProjectRequest) -> tuple[list[str], list[int]]:
    if request.items:
        raise InvalidInput("send either items or the packed fields, not both")
    counts = list(request.packed_counts)
    text = request.packed_keywords
    if not text:
        keywords: list[str] = []
    elif text[-1] != SEPARATOR:
        raise InvalidInput("packed_keywords must end with U+001F: every keyword is followed by it")
    else:
        keywords = text[:-1].split(SEPARATOR)
    if sum(counts) != len(keywords):
        raise InvalidInput(
            f"packed_counts add up to {sum(counts)}, but packed_keywords holds "
            f"{len(keywords)} keywords"
        )
    return keywords, counts


def _weights(request: pb.ProjectRequest, counts: list[int], n_keywords: int) -> np.ndarray | None:
    """The flat weights of the request (None when it gives none), lengths checked."""
    if not request.items:
        packed = request.packed_weights
        if not packed:
            return None
        if len(packed) != n_keywords:
            raise InvalidInput(f"{len(packed)} packed_weights for {n_keywords} packed keywords")
        return np.fromiter(packed, dtype=np.float32, count=len(packed))
    given = [item.weights for item in request.items]
    if not any(given):
        return None
    flat: list[float] = []
    for i, (ws, c) in enumerate(zip(given, counts, strict=True)):
        if not ws:
            flat += [1.0] * c
        elif len(ws) != c:
            raise InvalidInput(f"{len(ws)} weights for {c} keywords", item=i)
        else:
            flat += ws
    return np.array(flat, dtype=np.float32)


def validate(request: pb.ProjectRequest, settings: Settings) -> Bags:
    if request.packed_keywords or request.packed_counts:
        keywords, counts = _unpack(request)
    else:
        items = request.items
        counts = [len(item.keywords) for item in items]
        keywords = [k for item in items for k in item.keywords]
    if len(counts) > settings.max_items_per_request:
        raise InvalidInput(
            f"{len(counts)} items in one request; the limit is {settings.max_items_per_request}"
        )
    counts_np = np.array(counts, dtype=np.int64)
    if len(counts) and (c := max(counts)) > settings.max_keywords_per_item:
        raise InvalidInput(
            f"{c} keywords; the limit is {settings.max_keywords_per_item}",
            item=counts.index(c),
        )
    limit = settings.max_keyword_length
    if keywords and max(map(len, keywords)) > limit:
        j = next(j for j, k in enumerate(keywords) if len(k) > limit)
        raise InvalidInput(
            f"keyword of {len(keywords[j])} characters; the limit is {limit}",
            item=_item_of(counts_np, j),
        )
    weights = _weights(request, counts, len(keywords))
    if weights is not None:
        bad = ~(np.isfinite(weights) & (weights >= 0))
        if bad.any():
            j = int(np.argmax(bad))
            raise InvalidInput(
                f"weight {weights[j]} is not a finite, non-negative number",
                item=_item_of(counts_np, j),
            )
    return Bags(keywords, counts_np, weights, request.model_version)
