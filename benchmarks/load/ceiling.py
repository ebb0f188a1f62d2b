"""The in-process ceiling: mapping and projection of the same requests, no gRPC."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

from topicproj.service.client.wire import SEPARATOR
from topicproj.v1 import topicproj_pb2 as pb

from .workload import RequestPool

IN_PROCESS_SECONDS = 2.0


def request_keywords(request: pb.ProjectRequest) -> list[list[str]]:
    """The keyword lists of a request in either form."""
    if request.WhichOneof("input") != "packed":
        return [list(item.keywords) for item in request.item_list.items]
    flat = request.packed.keywords.split(SEPARATOR)
    bounds = itertools.accumulate(request.packed.keyword_counts, initial=0)
    return [flat[a:b] for a, b in itertools.pairwise(bounds)]


def in_process_rate(model_dir: Path, requests: RequestPool) -> float:
    """Items/s of mapping and projecting the scenario's requests in this process, no gRPC.

    The same requests, one `map_batch` and one `project_batch` each: what serving them costs
    without the network, parsing, batching or responses, so served / in-process says how much
    of the work the service adds.
    """
    import torch

    from topicproj.models.core.topic_model import TopicModel

    model = TopicModel.load(model_dir, device="cpu")
    keywords = [request_keywords(pb.ProjectRequest.FromString(p)) for p in requests.payloads]
    vocabulary = model.vocabulary_
    items = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for kws in itertools.cycle(keywords):  # a long pool (--zipf) is not walked to its end
            model.project_batch(vocabulary.map_batch(kws))
            items += len(kws)
            if (elapsed := time.perf_counter() - start) >= IN_PROCESS_SECONDS:
                break
    return items / elapsed
