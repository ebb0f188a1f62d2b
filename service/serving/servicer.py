"""The gRPC servicer: an adapter from protobuf to the model and back, with no maths inside."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc

from topicproj.models.core.topic_model import TopicModel
from topicproj.service.errors import InvalidInput, ModelVersionNotFound, NoModelRoot, Unsupported
from topicproj.service.jobs.queue import TrainingJobs
from topicproj.service.jobs.spec import spec_from_request
from topicproj.service.settings import Settings
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from .batching import Lanes
from .cache import ResponseCache
from .holder import ModelHolder, Projected
from .limits import OFF_LOOP_KEYWORDS, KeywordBudget, off_loop_keywords, page_of, precheck
from .responses import (
    build_response,
    job_message,
    model_message,
    traffic_message,
    version_message,
)
from .traffic import TrafficProfiles
from .validation import Bags, validate

# Requests of one stream inside the server at once, from read to sent. A slot frees when its
# response has been handed to grpc, so a client that stops reading stops the server reading
# its requests, and a stream holds at most this many responses in memory.
STREAM_WINDOW = 8
# Unknown keywords one GetTraffic lists at most: the sketch holds a few thousand, and the whole
# of it in one answer is no one's dashboard.
MAX_UNKNOWN_KEYWORDS = 1000


class TopicProjectionServicer(pb_grpc.TopicProjectionServiceServicer):
    """Reads the served model from the holder on every call, so a swap takes effect at once."""

    def __init__(
        self,
        holder: ModelHolder,
        batcher: Lanes[Bags, Projected],
        settings: Settings,
        jobs: TrainingJobs | None = None,
        budget: KeywordBudget | None = None,
        traffic: TrafficProfiles | None = None,
    ) -> None:
        self.holder = holder
        # the keywords of admitted requests, shared with the Open Inference servicer
        self.budget = budget or KeywordBudget(
            settings.max_queued_keywords, holder.metrics, settings.retry_delay_ms / 1000
        )
        self.batcher = batcher
        self.settings = settings
        self.jobs = jobs
        self.traffic = traffic
        self.cache: ResponseCache | None = None
        if settings.response_cache_bytes:
            self.cache = ResponseCache(settings.response_cache_bytes, holder.metrics)
            holder.on_change.append(self.cache.clear)

    async def Project(
        self, request: pb.ProjectRequest, context: grpc.aio.ServicerContext
    ) -> pb.ProjectResponse:
        return await self._project(request, context)

    async def ProjectStream(
        self,
        request_iterator: AsyncIterator[pb.ProjectStreamRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[pb.ProjectStreamResponse]:
        # Up to STREAM_WINDOW requests are projected at once; responses leave in request order.
        slots = asyncio.Semaphore(STREAM_WINDOW)
        pending: asyncio.Queue[asyncio.Task[pb.ProjectResponse] | None] = asyncio.Queue()

        async def read() -> None:
            try:
                async for message in request_iterator:
                    await slots.acquire()
                    task = asyncio.ensure_future(self._project(message.request, context))
                    await pending.put(task)
            finally:
                await pending.put(None)

        reader = asyncio.ensure_future(read())
        try:
            while (task := await pending.get()) is not None:
                response = pb.ProjectStreamResponse(response=await task)
                yield response  # resumes once grpc has taken the message
                slots.release()
            await reader  # re-raises a failure to read the request stream
        finally:
            reader.cancel()
            left = []  # read but not sent: the client went away, or the stream failed
            while not pending.empty():
                if (t := pending.get_nowait()) is not None:
                    t.cancel()
                    left.append(t)
            await asyncio.gather(reader, *left, return_exceptions=True)

    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetModelResponse:
        top = request.top_keywords if request.HasField("top_keywords") else 10
        return pb.GetModelResponse(model=model_message(self.holder.model, top))

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListModelsResponse:
        registry = self.holder.registry
        if registry is None:
            raise NoModelRoot()
        serving = self.holder.model.version_
        versions = await asyncio.get_running_loop().run_in_executor(None, registry.versions)
        return pb.ListModelsResponse(model_versions=[version_message(v, serving) for v in versions])

    async def ActivateModel(
        self, request: pb.ActivateModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.ActivateModelResponse:
        model = await self.holder.activate(request.version)
        return pb.ActivateModelResponse(model=model_message(model, 10))

    async def GetTraffic(
        self, request: pb.GetTrafficRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTrafficResponse:
        if self.traffic is None:
            raise Unsupported("this server keeps no traffic profile (--traffic-profile false)")
        top = request.top_unknown_keywords if request.HasField("top_unknown_keywords") else 20
        if top > MAX_UNKNOWN_KEYWORDS:
            raise InvalidInput(
                f"at most {MAX_UNKNOWN_KEYWORDS} unknown keywords, got {top}",
                "top_unknown_keywords",
            )
        return traffic_message(self.traffic.report(request.version, top))

    # -- training ------------------------------------------------------------------------

    def _jobs(self) -> TrainingJobs:
        if self.jobs is None:
            raise NoModelRoot()
        return self.jobs

    async def StartTraining(
        self, request: pb.StartTrainingRequest, context: grpc.aio.ServicerContext
    ) -> pb.StartTrainingResponse:
        jobs = self._jobs()
        catalog = jobs.catalog_path(request.catalog_path, request.upload_id)
        parent, parent_options = None, None
        if request.from_scratch and request.parent_version:
            raise InvalidInput("give parent_version or from_scratch, not both", "from_scratch")
        if not request.from_scratch:
            parent = request.parent_version or self.holder.model.version_
            registry = self.holder.registry
            assert registry is not None  # jobs exist only with a model root
            loop = asyncio.get_running_loop()
            parent_options = await loop.run_in_executor(None, registry.options, parent)
        job = await jobs.submit(spec_from_request(request, catalog, parent, parent_options))
        return pb.StartTrainingResponse(job=job_message(job))

    async def SetTopicLabels(
        self, request: pb.SetTopicLabelsRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetTopicLabelsResponse:
        if self.settings.workers > 1:
            raise Unsupported(
                "labels cannot be set on a server of several worker processes: each keeps its "
                "own copy of the model; set them with `topicproj models label --model DIR`"
            )
        model = await self.holder.set_labels(request.version, dict(request.labels))
        return pb.SetTopicLabelsResponse(
            labels=model.labels(), set_topics=sorted(model.label_overrides_)
        )

    async def UploadCatalog(
        self,
        request_iterator: AsyncIterator[pb.UploadCatalogRequest],
        context: grpc.aio.ServicerContext,
    ) -> pb.UploadCatalogResponse:
        upload_id, size = await self._jobs().upload(request_iterator)
        return pb.UploadCatalogResponse(upload_id=upload_id, size_bytes=size)

    async def GetTrainingJob(
        self, request: pb.GetTrainingJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTrainingJobResponse:
        return pb.GetTrainingJobResponse(job=job_message(self._jobs().get(request.job_id)))

    async def ListTrainingJobs(
        self, request: pb.ListTrainingJobsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTrainingJobsResponse:
        jobs = sorted(self._jobs().jobs.values(), key=lambda j: (j.created, j.id))
        page, next_token = page_of(jobs, request.page_size, request.page_token)
        return pb.ListTrainingJobsResponse(
            jobs=[job_message(j) for j in page], next_page_token=next_token
        )

    async def WatchTrainingJob(
        self, request: pb.WatchTrainingJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchTrainingJobResponse]:
        async for job in self._jobs().watch(request.job_id):
            yield pb.WatchTrainingJobResponse(job=job_message(job))

    async def CancelTrainingJob(
        self, request: pb.CancelTrainingJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelTrainingJobResponse:
        job = await self._jobs().cancel(request.job_id)
        return pb.CancelTrainingJobResponse(job=job_message(job))

    # -- the projection path -------------------------------------------------------------------

    async def _project(
        self, request: pb.ProjectRequest, context: grpc.aio.ServicerContext
    ) -> pb.ProjectResponse:
        served = self.holder.model
        asked = request.model_version
        if asked and asked != served.version_:
            raise ModelVersionNotFound(asked, served.version_)
        keywords = precheck(request, self.settings)  # lengths only, before any decoding
        cache = self.cache
        # A large request is not looked up: serializing it for the key would cost the event
        # loop what decoding it off the loop saves.
        key = None
        if cache is not None and keywords <= OFF_LOOP_KEYWORDS:
            key = cache.key(served.version_, request)
        if cache is None or key is None:
            return await self._compute(request, context, served, keywords)
        if (hit := cache.get(key)) is not None:
            return hit
        response = await self._compute(request, context, served, keywords)
        cache.put(key, response.model_version, response)
        return response

    async def _compute(
        self,
        request: pb.ProjectRequest,
        context: grpc.aio.ServicerContext,
        served: TopicModel,
        keywords: int,
    ) -> pb.ProjectResponse:
        with self.budget.hold(keywords):
            return await self._admitted(request, context, served, keywords)

    async def _admitted(
        self,
        request: pb.ProjectRequest,
        context: grpc.aio.ServicerContext,
        served: TopicModel,
        keywords: int,
    ) -> pb.ProjectResponse:
        asked = request.model_version
        # A large request is decoded in a thread: health stays responsive.
        if keywords > off_loop_keywords(self.settings):
            bags = await asyncio.to_thread(validate, request, self.settings)
        else:
            bags = validate(request, self.settings)
        if bags.explain is not None and served.projector_.activation.form != "gate":
            raise InvalidInput(
                f"the served activation {served.activation!r} has no explanation", "explain"
            )
        if not len(bags):
            return build_response(request, Projected.empty(served.n_topics, served.version_))
        remaining = context.time_remaining()
        deadline = time.monotonic() + remaining if remaining is not None else None
        projected = await self.batcher.submit(bags, len(bags), deadline, keywords)
        if asked and asked != projected.version:  # swapped while the request queued
            raise ModelVersionNotFound(asked, projected.version)
        if bags.explain is not None and projected.explanations is None:  # swapped, too
            raise InvalidInput("the model now served has no explanation", "explain")
        return build_response(request, projected)
