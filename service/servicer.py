"""The gRPC servicer: an adapter from protobuf to the model and back, with no maths inside."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
import numpy as np

from models.projection import top_topics
from models.topic_model import TopicModel
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from .batching import Batcher
from .errors import ModelVersionNotFound, NoModelRoot
from .training_jobs import Job, TrainingJobs, check_spec
from .validation import Bags, validate

if TYPE_CHECKING:
    from .server import ProjectionServer


@dataclass
class Projected:
    """One request's share of a projected batch: rows in request order."""

    Y: np.ndarray  # (items, topics) float32
    known: np.ndarray  # (items,) distinct keywords found in the vocabulary
    unknown: np.ndarray  # (items,) keywords not found
    version: str  # of the model that projected them

    @classmethod
    def empty(cls, topics: int, version: str) -> Projected:
        none = np.zeros(0, dtype=np.int64)
        return cls(np.zeros((0, topics), dtype=np.float32), none, none, version)


STREAM_WINDOW = 8  # requests of one stream projected at once


class TopicProjectionServicer(pb_grpc.TopicProjectionServicer):
    """Reads the served model from `state` on every call, so a swap takes effect at once."""

    def __init__(self, state: ProjectionServer, batcher: Batcher[Bags, Projected]) -> None:
        self.state = state
        self.batcher = batcher
        self.settings = state.settings

    async def Project(
        self, request: pb.ProjectRequest, context: grpc.aio.ServicerContext
    ) -> pb.ProjectResponse:
        return await self._project(request, context)

    async def ProjectStream(
        self,
        request_iterator: AsyncIterator[pb.ProjectRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.ProjectResponse]:
        # Up to STREAM_WINDOW requests are projected at once; responses leave in request order.
        slots = asyncio.Semaphore(STREAM_WINDOW)
        pending: asyncio.Queue[asyncio.Task[pb.ProjectResponse] | None] = asyncio.Queue()
        tasks: list[asyncio.Task[pb.ProjectResponse]] = []

        async def read() -> None:
            try:
                async for request in request_iterator:
                    await slots.acquire()
                    task = asyncio.ensure_future(self._project(request, context))
                    task.add_done_callback(lambda _: slots.release())
                    tasks.append(task)
                    await pending.put(task)
            finally:
                await pending.put(None)

        reader = asyncio.ensure_future(read())
        try:
            while (task := await pending.get()) is not None:
                yield await task
            await reader  # re-raises a failure to read the request stream
        finally:
            reader.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(reader, *tasks, return_exceptions=True)

    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        return model_info(self.state.model, request.top_keywords or 10)

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        registry = self.state.registry
        if registry is None:
            raise NoModelRoot()
        serving = self.state.model.version_
        versions = await asyncio.get_running_loop().run_in_executor(None, registry.versions)
        return pb.ListModelsResponse(
            models=[
                pb.ModelVersion(
                    version=v.version,
                    created_unix=v.created,
                    active=v.active,
                    serving=v.version == serving,
                )
                for v in versions
            ]
        )

    async def ActivateModel(
        self, request: pb.ActivateModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ModelInfo:
        model = await self.state.activate(request.version)
        return model_info(model, 10)

    # -- training ------------------------------------------------------------------------

    def _jobs(self) -> TrainingJobs:
        if self.state.jobs is None:
            raise NoModelRoot()
        return self.state.jobs

    async def StartTraining(
        self, request: pb.TrainRequest, context: grpc.aio.ServicerContext
    ) -> pb.TrainingJob:
        jobs = self._jobs()
        spec = check_spec(
            catalog=jobs.catalog_path(request.catalog_path, request.upload_id),
            format=request.format,
            topics=request.topics,
            activation=request.activation,
            min_df=request.min_df,
            max_epochs=request.max_epochs,
            learning_rate=request.learning_rate,
            l1=request.l1,
            seed=request.seed,
            activate_on_success=request.activate_on_success,
        )
        return job_message(await jobs.submit(spec))

    async def UploadCatalog(
        self, request_iterator: AsyncIterator[pb.CatalogChunk], context: grpc.aio.ServicerContext
    ) -> pb.UploadedCatalog:
        upload_id, size = await self._jobs().upload(request_iterator)
        return pb.UploadedCatalog(upload_id=upload_id, bytes=size)

    async def GetTrainingJob(
        self, request: pb.TrainingJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.TrainingJob:
        return job_message(self._jobs().get(request.job_id))

    async def WatchTrainingJob(
        self, request: pb.TrainingJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TrainingJob]:
        async for job in self._jobs().watch(request.job_id):
            yield job_message(job)

    async def CancelTrainingJob(
        self, request: pb.TrainingJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.TrainingJob:
        return job_message(await self._jobs().cancel(request.job_id))

    # -- the projection path -------------------------------------------------------------------

    async def _project(
        self, request: pb.ProjectRequest, context: grpc.aio.ServicerContext
    ) -> pb.ProjectResponse:
        served = self.state.model
        if request.model_version and request.model_version != served.version_:
            raise ModelVersionNotFound(request.model_version, served.version_)
        bags = validate(request, self.settings)
        if not len(bags):
            return build_response(request, Projected.empty(served.n_topics, served.version_))
        remaining = context.time_remaining()
        deadline = time.monotonic() + remaining if remaining is not None else None
        projected = await self.batcher.submit(bags, len(bags), deadline)
        if isinstance(projected, Exception):  # the model was swapped while this one queued
            raise projected
        return build_response(request, projected)


def job_message(job: Job) -> pb.TrainingJob:
    return pb.TrainingJob(
        id=job.id,
        state=int(job.state),
        epoch=job.epoch,
        max_epochs=job.max_epochs,
        train_loss=job.train_loss,
        validation_loss=job.validation_loss,
        error=job.error,
        model_version=job.model_version,
        activated=job.activated,
        created_unix=job.created,
    )


def model_info(model: TopicModel, top_keywords: int) -> pb.ModelInfo:
    return pb.ModelInfo(
        version=model.version_,
        topics=model.n_topics,
        vocabulary_size=len(model.vocabulary_),
        activation=model.activation,
        device=str(model.device_),
        topic_info=[pb.TopicInfo(**row) for row in model.topic_table(top_keywords)],
    )


def build_response(request: pb.ProjectRequest, projected: Projected) -> pb.ProjectResponse:
    """The response for one request: columns, or one message per item built in bulk."""
    Y = projected.Y
    n = len(Y)
    response = pb.ProjectResponse(model_version=projected.version)
    active = np.count_nonzero(Y > 0, axis=1)
    if request.top_k and n:
        topics, scores, counts = top_topics(Y, int(request.top_k))
    if request.columnar:
        response.known_keywords.extend(projected.known.tolist())
        response.unknown_keywords.extend(projected.unknown.tolist())
        response.active_topics.extend(active.tolist())
        if request.top_k and n:
            response.top_counts.extend(counts.tolist())
            response.top_topics.extend(topics.tolist())
            response.top_scores.extend(scores.tolist())
    else:
        ids = [item.id for item in request.items] or [""] * n  # packed items have no ids
        add = response.projections.add  # in place: constructing and appending copies each
        for i, k, u, a in zip(
            ids, projected.known.tolist(), projected.unknown.tolist(), active.tolist(), strict=True
        ):
            add(id=i, known_keywords=k, unknown_keywords=u, active_topics=a)
        rows = response.projections
        if not request.omit_dense and not request.dense_bytes:
            for p, row in zip(rows, Y.tolist(), strict=True):
                p.topics.extend(row)
        if request.top_k and n:
            bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
            topics_l, scores_l = topics.tolist(), scores.tolist()
            for i, p in enumerate(rows):
                add_top = p.top.add
                for j in range(bounds[i], bounds[i + 1]):
                    add_top(topic=topics_l[j], score=scores_l[j])
    if (request.dense_bytes or request.columnar) and not request.omit_dense and n:
        response.dense = np.ascontiguousarray(Y, dtype="<f4").tobytes()
        response.topics = Y.shape[1]
    return response
