"""Request validation: protobuf in, one flat list of keywords out, every limit checked.

Mapping keywords to ids is left to the batch (`ModelHolder.compute`), where one vectorised
call serves every request of the batch. The checks here run over whole requests with C-level
builtins and numpy; only a request that fails one is searched for the item at fault, which the
error names by its field path (`item_list.items[3].weights`).

`check_bags` holds the limits every front door shares: the domain API's two input forms here,
and the Open Inference Protocol's tensors (`oip.py`).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from topicproj.service.client.wire import SEPARATOR  # ends every keyword of `PackedItems.keywords`
from topicproj.service.errors import InvalidInput
from topicproj.service.settings import Settings
from topicproj.v1 import topicproj_pb2 as pb


@dataclass
class Bags:
    """The keyword bags of one request: item i holds the next `counts[i]` keywords."""

    keywords: list[str]  # every keyword of every item, in item order
    counts: np.ndarray  # (items,) int64
    weights: np.ndarray | None  # (keywords,) float32; None: every weight is 1
    model_version: str = ""  # the version the request asked for, if any
    explain: int | None = None  # keywords per explained topic, when explanations are asked for
    top_k: int = 0  # top topics per item asked for; their labels come with them

    def __len__(self) -> int:
        return len(self.counts)


def item_of(counts: np.ndarray, keyword: int) -> int:
    """The item that holds the flat keyword at index `keyword`."""
    return int(np.searchsorted(np.cumsum(counts), keyword, side="right"))


# How each form names the field of item i's keyword j: the path a BadRequest reports.
ItemField = Callable[[int, str], str]


def _listed(i: int, name: str) -> str:
    return f"item_list.items[{i}].{'keywords' if name == 'count' else name}"


def _packed(i: int, name: str) -> str:
    return f"packed.keyword_counts[{i}]" if name == "count" else f"packed.{name}"


def check_bags(
    keywords: list[str],
    counts: np.ndarray,
    weights: np.ndarray | None,
    settings: Settings,
    where: ItemField,
    items_field: str,
) -> None:
    """The limits of one request, whatever its form; InvalidInput names the field at fault."""
    n = len(counts)
    if n > settings.max_items_per_request:
        raise InvalidInput(
            f"{n} items in one request; the limit is {settings.max_items_per_request}",
            items_field,
        )
    if n and (c := int(counts.max())) > settings.max_keywords_per_item:
        i = int(np.argmax(counts))
        raise InvalidInput(
            f"item {i} has {c} keywords; the limit is {settings.max_keywords_per_item}",
            where(i, "count"),
        )
    limit = settings.max_keyword_length
    if keywords and max(map(len, keywords)) > limit:
        j = next(j for j, k in enumerate(keywords) if len(k) > limit)
        i = item_of(counts, j)
        raise InvalidInput(
            f"item {i} has a keyword of {len(keywords[j])} characters; the limit is {limit}",
            where(i, "keywords"),
        )
    if weights is not None:
        top = settings.max_keyword_weight
        # NaN fails both comparisons, so it is refused with inf and the negatives
        bad = ~((weights >= 0) & (weights <= top))
        if bad.any():
            j = int(np.argmax(bad))
            i = item_of(counts, j)
            raise InvalidInput(
                f"item {i} has the weight {weights[j]}, not a finite, non-negative number: "
                f"weights are finite numbers in [0, {top:g}] (max_keyword_weight)",
                where(i, "weights"),
            )


_keywords_of = operator.attrgetter("keywords")
_weights_of = operator.attrgetter("weights")


def _from_items(request: pb.ProjectRequest) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    # Every step is a C-level map or chain over the repeated fields: no bytecode per keyword.
    items = request.item_list.items
    lists = list(map(_keywords_of, items))
    counts = np.fromiter(map(len, lists), np.int64, len(lists))
    keywords = list(itertools.chain.from_iterable(lists))
    given = list(map(_weights_of, items))
    sizes = np.fromiter(map(len, given), np.int64, len(given))
    if not sizes.any():
        return keywords, counts, None
    wrong = (sizes != 0) & (sizes != counts)
    if wrong.any():
        i = int(np.argmax(wrong))
        raise InvalidInput(f"{sizes[i]} weights for {counts[i]} keywords", _listed(i, "weights"))
    flat = np.fromiter(itertools.chain.from_iterable(given), np.float32, int(sizes.sum()))
    if (sizes == counts).all():
        return keywords, counts, flat
    weights = np.ones(len(keywords), dtype=np.float32)  # items without weights weigh 1 each
    weights[np.repeat(sizes != 0, counts)] = flat
    return keywords, counts, weights


def _from_packed(request: pb.ProjectRequest) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    packed = request.packed
    counts = np.array(packed.keyword_counts, dtype=np.int64)
    text = packed.keywords
    if not text:
        keywords: list[str] = []
    elif text[-1] != SEPARATOR:
        raise InvalidInput(
            "must end with U+001F: every keyword is followed by it", "packed.keywords"
        )
    else:
        keywords = text[:-1].split(SEPARATOR)
    if (total := int(counts.sum())) != len(keywords):
        raise InvalidInput(
            f"keyword_counts add up to {total}, but keywords holds {len(keywords)}",
            "packed.keyword_counts",
        )
    if packed.ids and len(packed.ids) != len(counts):
        raise InvalidInput(f"{len(packed.ids)} ids for {len(counts)} items", "packed.ids")
    if not packed.weights:
        return keywords, counts, None
    if len(packed.weights) != len(keywords):
        raise InvalidInput(
            f"{len(packed.weights)} weights for {len(keywords)} keywords", "packed.weights"
        )
    return keywords, counts, np.array(packed.weights, dtype=np.float32)


def validate(request: pb.ProjectRequest, settings: Settings) -> Bags:
    form = request.WhichOneof("input")
    if form == "packed":
        keywords, counts, weights = _from_packed(request)
        where, items_field = _packed, "packed.keyword_counts"
    else:  # item_list, or nothing at all: no items
        keywords, counts, weights = _from_items(request)
        where, items_field = _listed, "item_list.items"
    counts_np = counts
    check_bags(keywords, counts_np, weights, settings, where, items_field)
    explain = None
    if request.explain:
        # Explanations are computed in the compute thread every client shares: bounded.
        if len(counts_np) > settings.max_explained_items:
            raise InvalidInput(
                f"{len(counts_np)} items asked for explanations; the limit is "
                f"{settings.max_explained_items}",
                "explain",
            )
        explain = min(
            request.explain_keywords if request.HasField("explain_keywords") else 5,
            settings.max_keywords_per_item,
        )
    return Bags(keywords, counts_np, weights, request.model_version, explain, request.top_k)
