"""The child process of a training job: read the catalog, fit, add the model to the registry.

Spawned, not forked (no grpc or torch state is inherited), at a lower CPU priority and with one
torch thread fewer than the machine has, so that serving keeps its latency while it trains.
Every outcome goes back to the parent through `progress`: each epoch, then success or failure.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

from .spec import TrainSpec


def train_in_child(spec: TrainSpec, model_root: str, device: str, progress: Any) -> None:
    import torch

    from topicproj.models.core.topic_model import TopicModel
    from topicproj.models.data.catalog import read_catalog
    from topicproj.models.store.registry import ModelRegistry

    with contextlib.suppress(OSError):
        os.nice(10)  # serving first
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    try:
        catalog = read_catalog(spec.catalog, format=spec.format)
        registry = ModelRegistry(model_root)
        parent = registry.load(spec.parent, device) if spec.parent else None
        model = TopicModel.from_options(spec.options, device=device)
        model.fit(
            catalog.keywords,
            parent=parent,
            add_topics=spec.add_topics,
            on_epoch=lambda entry: progress.put(("epoch", entry)),
        )
        version = registry.add(model)
        progress.put(("succeeded", version))
    except Exception as e:  # reported to the client as the job's error
        progress.put(("failed", f"{type(e).__name__}: {e}"))
