"""`ModelHolder`: the served model, how a batch is computed on it, and how it is swapped.

It knows nothing of gRPC: the servicer and the batcher call it, the server builds it. The model
and its dead-topic tracker are one tuple, replaced in one assignment, so a batch reads the pair
once and is projected wholly by one version.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from topicproj.models.core.explain import ItemExplanation, explain_batch
from topicproj.models.core.labels import check_labels, merge_labels, write_labels
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.store.registry import ModelRegistry
from topicproj.service.errors import (
    InvalidInput,
    ModelVersionNotFound,
    NoModelRoot,
    NonFiniteOutput,
)
from topicproj.service.metrics import DeadTopicTracker, ServiceMetrics

from .validation import Bags

log = logging.getLogger(__name__)


@dataclass
class Projected:
    """One request's share of a projected batch: rows in request order."""

    Y: np.ndarray  # (items, topics) float32
    known: np.ndarray  # (items,) distinct keywords found in the vocabulary
    unknown: np.ndarray  # (items,) keywords not found
    version: str  # of the model that projected them
    explanations: list[ItemExplanation] | None = None  # per item, when asked for
    labels: list[str] | None = None  # the topics' labels at the time, when top-k is asked for
    # The request's keywords' vocabulary ids (-1: unknown), as the batch looked them up: the
    # traffic profile finds the unknown keywords here instead of looking every keyword up again.
    keyword_ids: np.ndarray | None = None

    @classmethod
    def empty(cls, topics: int, version: str) -> Projected:
        none = np.zeros(0, dtype=np.int64)
        return cls(np.zeros((0, topics), dtype=np.float32), none, none, version)


def warm_up(model: TopicModel) -> None:
    """First-call allocations (and the CUDA context) happen here, not in a client's request."""
    model.project_batch(model.vocabulary_.map_batch([model.vocabulary_.keywords[:2]]))


class ModelHolder:
    def __init__(
        self,
        model: TopicModel,
        metrics: ServiceMetrics,
        *,
        device: str = "auto",
        dead_topic_window: int = 10000,
        registry: ModelRegistry | None = None,
    ) -> None:
        self.metrics = metrics
        self.device = device
        self.dead_topic_window = dead_topic_window
        self.registry = registry
        self._serving = (model, DeadTopicTracker(model.n_topics, dead_topic_window))
        self._activating = asyncio.Lock()
        self._tracking = threading.Lock()  # two batching lanes record at once
        # Called after anything an answer depends on changed (a swap, labels): the response
        # cache empties itself here.
        self.on_change: list[Callable[[], None]] = []
        self.describe()

    def _changed(self) -> None:
        for callback in self.on_change:
            callback()

    @property
    def model(self) -> TopicModel:
        return self._serving[0]

    @property
    def dead_topics(self) -> DeadTopicTracker:
        return self._serving[1]

    def compute(self, requests: list[Bags]) -> list[Projected]:
        """Map and project the requests of one batch together.

        Runs in the batcher's worker thread: one vectorised keyword mapping and one projection
        for the whole batch, then each request gets its rows back, named by the version that
        projected them (the caller checks it against the version the request asked for).
        Sparsity and dead topics are recorded by `record`, once the answers are on their way.
        """
        keywords: list[str] = []
        for r in requests:
            keywords += r.keywords
        counts = np.concatenate([r.counts for r in requests])
        weights = None
        if any(r.weights is not None for r in requests):
            weights = np.concatenate(
                [
                    r.weights if r.weights is not None else np.ones(len(r.keywords), np.float32)
                    for r in requests
                ]
            )
        model = self._serving[0]  # one version for the whole batch
        version = model.version_
        ids = model.vocabulary_.lookup(keywords)
        batch = model.vocabulary_.map_ids(ids, counts, weights)
        Y = model.project_batch(batch).cpu().numpy()  # (items, topics)
        if not np.isfinite(Y).all():
            # Weights are finite (the registry refuses others) and inputs bounded, so this is
            # a defect: fail the batch with INTERNAL, never answer a NaN with OK.
            self.metrics.nonfinite_batches.inc()
            log.error("model version %s projected inf or NaN; batch refused", version)
            raise NonFiniteOutput()
        known, unknown = batch.known, batch.unknown
        out: list[Projected] = []
        row = at = 0
        for r in requests:
            end, to = row + len(r), at + len(r.keywords)
            projected = Projected(
                Y[row:end], known[row:end], unknown[row:end], version, keyword_ids=ids[at:to]
            )
            if r.top_k:
                projected.labels = model.labels()
            # Only when asked: the rest of the batch pays nothing. The model may have been
            # swapped for one without the gate since the request was checked; then there is
            # no explanation, and the servicer refuses that request alone.
            if r.explain is not None and model.projector_.activation.form == "gate":
                keywords = model.vocabulary_.keywords
                projected.explanations = explain_batch(
                    model.projector_, batch.rows(row, end), keywords, r.explain
                )
            out.append(projected)
            row, at = end, to
        return out

    def record(self, results: list[Projected]) -> None:
        """The batch's sparsity, vocabulary coverage and dead topics, in the metrics.

        The batcher calls this in its worker thread after the requests have their answers, so
        no client waits for the bookkeeping. A batch projected by a version swapped out since
        still counts in the histograms, but not in the new version's dead-topic window.
        """
        Y = np.concatenate([r.Y for r in results]) if len(results) > 1 else results[0].Y
        known = np.concatenate([r.known for r in results])
        unknown = np.concatenate([r.unknown for r in results])
        self.metrics.observe_projections(Y, known, unknown)
        model, dead_topics = self._serving
        if results[0].version == model.version_:
            with self._tracking:
                self.metrics.dead_topics.set(dead_topics.update(Y))

    async def activate(self, version: str) -> TopicModel:
        """Serve `version` of the registry from now on: load, verify, warm up, then swap.

        Batches already computing finish on the old model; the swap is one assignment.
        """
        if self.registry is None:
            raise NoModelRoot()
        loop = asyncio.get_running_loop()
        async with self._activating:  # one activation at a time, in the order asked
            model = await loop.run_in_executor(None, self.registry.load, version, self.device)
            await loop.run_in_executor(None, warm_up, model)
            await loop.run_in_executor(None, self.registry.activate, version)
            await loop.run_in_executor(None, self.registry.mark_served, version)
            self._serving = (model, DeadTopicTracker(model.n_topics, self.dead_topic_window))
            self._changed()
            self.describe()
            self.metrics.model_swaps.inc()
        log.info("now serving model version %s", version)
        return model

    async def set_labels(self, version: str, labels: dict[int, str]) -> TopicModel:
        """Set or clear topic labels of `version` ("" for the served one); returns the model.

        The labels file is replaced first and the served model's labels after, so a crash in
        between loses nothing a client was told had been set.
        """
        loop = asyncio.get_running_loop()
        async with self._activating:  # not while a swap replaces the served model
            model = self.model
            if version and version != model.version_:
                if self.registry is None:
                    raise ModelVersionNotFound(version, model.version_)
                model = await loop.run_in_executor(None, self.registry.load, version, "cpu")
            try:
                changes = check_labels(labels, model.n_topics)
            except ValueError as e:
                raise InvalidInput(str(e), "labels") from None
            merged = merge_labels(model.label_overrides_, changes)
            await loop.run_in_executor(None, write_labels, model.path_, merged)
            model.label_overrides_ = merged
            self._changed()
        log.info("labels of model version %s: %d set", model.version_, len(merged))
        return model

    def describe(self) -> None:
        model = self.model
        self.metrics.describe_model(
            model.version_,
            model.n_topics,
            len(model.vocabulary_),
            model.activation,
            str(model.device_),
        )
