"""Request validation and mapping: protobuf items in, a `SparseBatch` out.

Every problem names the item index, so a client can find the item among thousands.
"""

from __future__ import annotations

import math

from models.sparse import SparseBatch
from models.vocabulary import Vocabulary
from topicproj.v1 import topicproj_pb2 as pb

from .errors import InvalidInput
from .settings import Settings


def validate_and_map(
    request: pb.ProjectRequest, vocabulary: Vocabulary, settings: Settings
) -> SparseBatch:
    items = request.items
    if len(items) > settings.max_items_per_request:
        raise InvalidInput(
            f"{len(items)} items in one request; the limit is {settings.max_items_per_request}"
        )
    keywords: list[list[str]] = []
    weights: list[list[float]] | None = None
    for i, item in enumerate(items):
        kws = list(item.keywords)
        if len(kws) > settings.max_keywords_per_item:
            raise InvalidInput(
                f"{len(kws)} keywords; the limit is {settings.max_keywords_per_item}", item=i
            )
        for kw in kws:
            if len(kw) > settings.max_keyword_length:
                raise InvalidInput(
                    f"keyword of {len(kw)} characters; the limit is {settings.max_keyword_length}",
                    item=i,
                )
        ws = list(item.weights)
        if ws:
            if len(ws) != len(kws):
                raise InvalidInput(f"{len(ws)} weights for {len(kws)} keywords", item=i)
            for w in ws:
                if not math.isfinite(w) or w < 0:
                    raise InvalidInput(f"weight {w} is not a finite, non-negative number", item=i)
            if weights is None:
                weights = [[1.0] * len(k) for k in keywords]
        if weights is not None:
            weights.append(ws or [1.0] * len(kws))
        keywords.append(kws)
    return vocabulary.map_batch(keywords, weights)
