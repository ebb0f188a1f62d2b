"""What every peer does with a request: the model's own mapping and projection, and the same
response builder, so that the peers differ in how they serve, not in what they compute."""

from __future__ import annotations

import numpy as np

from topicproj.models.core.topic_model import TopicModel
from topicproj.service.serving.holder import Projected
from topicproj.service.serving.responses import build_response
from topicproj.service.serving.validation import Bags, validate
from topicproj.service.settings import Settings
from topicproj.v1 import topicproj_pb2 as pb

SETTINGS = Settings(metrics_port=None)  # the default limits, as topicproj serve has them


def project(model: TopicModel, requests: list[pb.ProjectRequest]) -> list[pb.ProjectResponse]:
    """Validate, map and project `requests` together, one response each."""
    bags: list[Bags] = [validate(r, SETTINGS) for r in requests]
    keywords = [k for b in bags for k in b.keywords]
    counts = np.concatenate([b.counts for b in bags]) if bags else np.zeros(0, np.int64)
    batch = model.vocabulary_.map_flat(keywords, counts, None)
    Y = model.project_batch(batch).cpu().numpy()  # (items, topics)
    out, row = [], 0
    for request, b in zip(requests, bags, strict=True):
        end = row + len(b)
        rows = Projected(Y[row:end], batch.known[row:end], batch.unknown[row:end], model.version_)
        out.append(build_response(request, rows))
        row = end
    return out


def items_of(request: pb.ProjectRequest) -> int:
    if request.WhichOneof("input") == "packed":
        return len(request.packed.keyword_counts)
    return len(request.item_list.items)
