"""Question 6 of the activation study: what each activation costs on the CPU.

Kernel items/s of every activation on the same trained weights and the same batch, beside a
plain relu(x W + b) that never computes the overlap.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lab.evaluation import EvaluationData, Fitted

if TYPE_CHECKING:
    from .config import StudyConfig


@torch.no_grad()
def cost(
    config: StudyConfig, fitted: dict[tuple[int, str, int], Fitted], data: EvaluationData
) -> dict[str, Any]:
    """Kernel items/s of each activation on the same trained weights and the same batch.

    Each projector takes the weights of the first overlap model (the activations differ only in
    their per-topic parameters, which do not change the work). "plain relu" is
    relu(x W + b) without the overlap: what a projector that never computes J would cost.
    Rounds interleave the variants, so a busy machine slows all of them alike.
    """
    import scipy.sparse as sp
    import torch.nn.functional as F

    from topicproj.models.core.projector import Projector, ProjectorConfig
    from topicproj.models.core.sparse import SparseBatch

    n_topics = config.topics[0]
    keys = sorted(k for k in fitted if k[0] == n_topics)
    source = fitted[min(keys, key=lambda k: (k[1] != "overlap", k[2]))].model
    reps = -(-config.cost_items // data.X_all.shape[0])
    X = sp.vstack([data.X_all] * reps).tocsr()[: config.cost_items]
    inputs = SparseBatch.from_csr(X).torch_inputs("cpu")
    state = source.projector_.state_dict()
    variants: dict[str, Callable[[], torch.Tensor]] = {}
    for activation in config.activations:
        projector = Projector(ProjectorConfig(X.shape[1], n_topics, activation)).eval()
        projector.keyword_topics.copy_(state["keyword_topics"])
        projector.bias.copy_(state["bias"])
        variants[activation] = lambda p=projector: p(*inputs)
    W, b = state["keyword_topics"], state["bias"]

    def plain_relu() -> torch.Tensor:
        xw = F.embedding_bag(inputs[0], W, inputs[1], mode="sum", per_sample_weights=inputs[2])
        return torch.relu(xw + b)

    variants["plain relu"] = plain_relu
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():
        fn()  # warm up
    for _ in range(config.cost_rounds):
        for name, fn in variants.items():
            t = time.perf_counter()
            fn()
            seconds[name].append(time.perf_counter() - t)
    # The fastest pass is the cost of the code; slower passes also measure whatever else the
    # machine was doing (the median is kept beside it, as a sign of how busy it was).
    reference = min(seconds["relu"]) if "relu" in seconds else None
    rows = []
    for name, s in seconds.items():
        median = float(np.median(s))
        rows.append(
            {
                "name": name,
                "items_per_second_median": X.shape[0] / median,
                "items_per_second_best": X.shape[0] / min(s),
                "relative_to_relu": min(s) / reference if reference else None,
            }
        )
    return {
        "items": X.shape[0],
        "topics": n_topics,
        "keywords": X.shape[1],
        "rounds": config.cost_rounds,
        "threads": torch.get_num_threads(),
        "rows": rows,
    }
