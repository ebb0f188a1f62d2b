"""The gRPC servicer: an adapter from protobuf to the model and back, with no maths inside."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import numpy as np

from models.projection import top_topics
from models.sparse import SparseBatch
from models.topic_model import TopicModel
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from .batching import Batcher
from .errors import ModelVersionNotFound
from .settings import Settings
from .validation import validate_and_map

STREAM_WINDOW = 8  # requests of one stream projected at once


class TopicProjectionServicer(pb_grpc.TopicProjectionServicer):
    def __init__(self, model: TopicModel, batcher: Batcher, settings: Settings) -> None:
        self.model = model
        self.batcher = batcher
        self.settings = settings
        self.version: str = getattr(model, "version_", "unversioned")

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
        model = self.model
        return pb.ModelInfo(
            version=self.version,
            topics=model.n_topics,
            vocabulary_size=len(model.vocabulary_),
            activation=model.activation,
            device=str(model.device_),
            topic_info=[
                pb.TopicInfo(**row) for row in model.topic_table(request.top_keywords or 10)
            ],
        )

    # -- the projection path -------------------------------------------------------------------

    async def _project(
        self, request: pb.ProjectRequest, context: grpc.aio.ServicerContext
    ) -> pb.ProjectResponse:
        if request.model_version and request.model_version != self.version:
            raise ModelVersionNotFound(request.model_version, self.version)
        batch = validate_and_map(request, self.model.vocabulary_, self.settings)
        remaining = context.time_remaining()
        deadline = time.monotonic() + remaining if remaining is not None else None
        Y = await self.batcher.submit(batch, deadline)
        return build_response(request, Y, batch, self.version)


def build_response(
    request: pb.ProjectRequest, Y: np.ndarray, batch: SparseBatch, version: str
) -> pb.ProjectResponse:
    """Protobuf rows for Y (items, topics)."""
    n = len(batch)
    known = batch.known
    active = (Y > 0).sum(axis=1) if n else np.zeros(0, dtype=np.int64)
    if request.top_k and n:
        topics, scores, counts = top_topics(Y, int(request.top_k))
        bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
        topics, scores = topics.tolist(), scores.tolist()
    projections = []
    for i in range(n):
        p = pb.Projection(
            id=request.items[i].id,
            known_keywords=int(known[i]),
            unknown_keywords=int(batch.unknown[i]),
            active_topics=int(active[i]),
        )
        if not request.omit_dense and not request.dense_bytes:
            p.topics.extend(Y[i].tolist())
        if request.top_k:
            a, b = bounds[i], bounds[i + 1]
            p.top.extend(
                pb.TopicScore(topic=t, score=v)
                for t, v in zip(topics[a:b], scores[a:b], strict=True)
            )
        projections.append(p)
    response = pb.ProjectResponse(model_version=version, projections=projections)
    if request.dense_bytes and not request.omit_dense and n:
        response.dense = np.ascontiguousarray(Y, dtype="<f4").tobytes()
        response.topics = Y.shape[1]
    return response
