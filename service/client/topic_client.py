"""Python clients for the projection service: `TopicClient` (blocking) and `AsyncTopicClient`.

Items go in as plain Python (keyword lists, or dicts with `id`, `keywords` and `weights`), and
projections come back as numpy arrays; everything else comes back as plain dicts named as in
the proto. Both clients retry UNAVAILABLE and RESOURCE_EXHAUSTED and keep their connection
alive (`channel.ChannelSettings`, overridable with `channel_settings=`).

They need grpcio, protobuf and numpy only: `pip install topicproj` installs no torch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from .channel import ChannelSettings, aio_channel, bearer, channel
from .wire import (
    ItemLike,
    Projections,
    _ids,
    as_dict,
    catalog_chunks,
    from_response,
    start_training_request,
    to_request,
)


def _model_request(top_keywords: int | None) -> pb.GetModelRequest:
    return pb.GetModelRequest(top_keywords=top_keywords)


def _item_ids(request: pb.ProjectRequest, items: Sequence[ItemLike]) -> list[str]:
    return [it.id for it in request.item_list.items] or _ids(items)


class _Client:
    """What both clients share: the channel's settings, the token, the per-call timeout."""

    def __init__(
        self,
        *,
        timeout: float | None,
        token: str | None,
    ) -> None:
        self.timeout = timeout
        self._metadata = bearer(token) if token else None

    def _call(self) -> dict[str, Any]:
        return {"timeout": self.timeout, "metadata": self._metadata}


class TopicClient(_Client):
    """Blocking client. Use as a context manager, or call `close()`.

    `ca_file`: connect over TLS, trusting this PEM certificate (authority). `token`: sent as
    `authorization: Bearer <token>` on every call, for servers started with an auth token.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout: float | None = 30.0,
        token: str | None = None,
        ca_file: str | Path | None = None,
        channel_settings: ChannelSettings | None = None,
    ) -> None:
        super().__init__(timeout=timeout, token=token)
        self._channel = channel(address, ca_file=ca_file, settings=channel_settings)
        self._stub = pb_grpc.TopicProjectionServiceStub(self._channel)

    def project(
        self,
        items: Sequence[ItemLike],
        *,
        top_k: int = 0,
        omit_topics: bool = False,
        model_version: str = "",
        fast: bool = True,
        explain: int | None = None,
    ) -> Projections:
        """Project `items`: keyword lists, or dicts with `id`, `keywords` and `weights`.

        `fast` (the default) sends the items packed and gets the answer as columns; without
        it, one message per item each way. The result is the same either way. `explain=N`
        also returns, per item, why its topics fired, with N keywords per topic.
        """
        request = to_request(items, top_k, omit_topics, model_version, fast, explain)
        response = self._stub.Project(request, **self._call())
        return from_response(response, _item_ids(request, items))

    def get_model(self, top_keywords: int | None = None) -> dict[str, Any]:
        """The served model, with `top_keywords` per topic (default 10)."""
        return as_dict(self._stub.GetModel(_model_request(top_keywords), **self._call()).model)

    def list_models(self) -> list[dict[str, Any]]:
        response = self._stub.ListModels(pb.ListModelsRequest(), **self._call())
        return [as_dict(m) for m in response.model_versions]

    def activate_model(self, version: str) -> dict[str, Any]:
        request = pb.ActivateModelRequest(version=version)
        return as_dict(self._stub.ActivateModel(request, **self._call()).model)

    def set_topic_labels(self, labels: dict[int, str], version: str = "") -> list[str]:
        """Set (or, with "", clear) topics' labels of `version` (default: the served one).
        Returns every topic's label now."""
        request = pb.SetTopicLabelsRequest(version=version, labels=labels)
        return list(self._stub.SetTopicLabels(request, **self._call()).labels)

    # -- training through the service (servers with --model-root) -------------------------

    def upload_catalog(self, path: str | Path, chunk_bytes: int = 1 << 20) -> str:
        """Send a catalog file; returns the upload id for `start_training`."""
        chunks = catalog_chunks(Path(path), chunk_bytes)
        # No deadline: a large catalog on a slow link takes what it takes.
        reply = self._stub.UploadCatalog(chunks, timeout=None, metadata=self._metadata)
        return str(reply.upload_id)

    def start_training(self, **fields: Any) -> dict[str, Any]:
        """Queue a training job on a catalog under the server's data root, or an upload.

        `fields`: catalog_path or upload_id, format, activate_on_success, and any option of
        `TrainingOptions` (topics, activation, min_df, max_epochs, learning_rate, l1, seed,
        ...). A misspelt one raises ValueError before anything is sent.
        """
        request = start_training_request(**fields)
        return as_dict(self._stub.StartTraining(request, **self._call()).job)

    def traffic(self, version: str = "", top_unknown_keywords: int | None = None) -> dict[str, Any]:
        """The served (or `version`'s) traffic profile against its training baseline."""
        request = pb.GetTrafficRequest(version=version, top_unknown_keywords=top_unknown_keywords)
        return as_dict(self._stub.GetTraffic(request, **self._call()))

    def training_job(self, job_id: str) -> dict[str, Any]:
        request = pb.GetTrainingJobRequest(job_id=job_id)
        return as_dict(self._stub.GetTrainingJob(request, **self._call()).job)

    def training_jobs(self) -> list[dict[str, Any]]:
        """Every job, oldest first: page after page until the last."""
        jobs: list[dict[str, Any]] = []
        token = ""
        while True:
            request = pb.ListTrainingJobsRequest(page_token=token)
            response = self._stub.ListTrainingJobs(request, **self._call())
            jobs += [as_dict(j) for j in response.jobs]
            if not (token := response.next_page_token):
                return jobs

    def watch_training_job(self, job_id: str) -> Iterator[dict[str, Any]]:
        """The job's state now and at every change, until it is done."""
        request = pb.WatchTrainingJobRequest(job_id=job_id)
        for reply in self._stub.WatchTrainingJob(request, metadata=self._metadata):
            yield as_dict(reply.job)

    def cancel_training_job(self, job_id: str) -> dict[str, Any]:
        request = pb.CancelTrainingJobRequest(job_id=job_id)
        return as_dict(self._stub.CancelTrainingJob(request, **self._call()).job)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> TopicClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncTopicClient(_Client):
    """asyncio client, as `TopicClient`. Use as an async context manager, or await `close()`."""

    def __init__(
        self,
        address: str,
        *,
        timeout: float | None = 30.0,
        token: str | None = None,
        ca_file: str | Path | None = None,
        channel_settings: ChannelSettings | None = None,
    ) -> None:
        super().__init__(timeout=timeout, token=token)
        self._channel = aio_channel(address, ca_file=ca_file, settings=channel_settings)
        self._stub = pb_grpc.TopicProjectionServiceStub(self._channel)

    async def project(
        self,
        items: Sequence[ItemLike],
        *,
        top_k: int = 0,
        omit_topics: bool = False,
        model_version: str = "",
        fast: bool = True,
        explain: int | None = None,
    ) -> Projections:
        """Project `items`, as `TopicClient.project` does."""
        request = to_request(items, top_k, omit_topics, model_version, fast, explain)
        response = await self._stub.Project(request, **self._call())
        return from_response(response, _item_ids(request, items))

    async def get_model(self, top_keywords: int | None = None) -> dict[str, Any]:
        response = await self._stub.GetModel(_model_request(top_keywords), **self._call())
        return as_dict(response.model)

    async def list_models(self) -> list[dict[str, Any]]:
        response = await self._stub.ListModels(pb.ListModelsRequest(), **self._call())
        return [as_dict(m) for m in response.model_versions]

    async def activate_model(self, version: str) -> dict[str, Any]:
        request = pb.ActivateModelRequest(version=version)
        return as_dict((await self._stub.ActivateModel(request, **self._call())).model)

    async def set_topic_labels(self, labels: dict[int, str], version: str = "") -> list[str]:
        request = pb.SetTopicLabelsRequest(version=version, labels=labels)
        return list((await self._stub.SetTopicLabels(request, **self._call())).labels)

    async def upload_catalog(self, path: str | Path, chunk_bytes: int = 1 << 20) -> str:
        chunks = catalog_chunks(Path(path), chunk_bytes)
        reply = await self._stub.UploadCatalog(chunks, timeout=None, metadata=self._metadata)
        return str(reply.upload_id)

    async def start_training(self, **fields: Any) -> dict[str, Any]:
        request = start_training_request(**fields)
        return as_dict((await self._stub.StartTraining(request, **self._call())).job)

    async def traffic(
        self, version: str = "", top_unknown_keywords: int | None = None
    ) -> dict[str, Any]:
        request = pb.GetTrafficRequest(version=version, top_unknown_keywords=top_unknown_keywords)
        return as_dict(await self._stub.GetTraffic(request, **self._call()))

    async def training_job(self, job_id: str) -> dict[str, Any]:
        request = pb.GetTrainingJobRequest(job_id=job_id)
        return as_dict((await self._stub.GetTrainingJob(request, **self._call())).job)

    async def training_jobs(self) -> list[dict[str, Any]]:
        """Every job, oldest first: page after page until the last."""
        jobs: list[dict[str, Any]] = []
        token = ""
        while True:
            request = pb.ListTrainingJobsRequest(page_token=token)
            response = await self._stub.ListTrainingJobs(request, **self._call())
            jobs += [as_dict(j) for j in response.jobs]
            if not (token := response.next_page_token):
                return jobs

    async def watch_training_job(self, job_id: str) -> AsyncIterator[dict[str, Any]]:
        request = pb.WatchTrainingJobRequest(job_id=job_id)
        async for reply in self._stub.WatchTrainingJob(request, metadata=self._metadata):
            yield as_dict(reply.job)

    async def cancel_training_job(self, job_id: str) -> dict[str, Any]:
        request = pb.CancelTrainingJobRequest(job_id=job_id)
        return as_dict((await self._stub.CancelTrainingJob(request, **self._call())).job)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> AsyncTopicClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def check_health(
    address: str,
    timeout: float = 3.0,
    service: str = "",
    *,
    ca_file: str | Path | None = None,
    token: str | None = None,
) -> str:
    """The server's health status name (SERVING, NOT_SERVING, ...), or raises grpc.RpcError."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    # No retries: a health check reports what it finds now.
    with channel(address, ca_file=ca_file, settings=ChannelSettings(retry=None)) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        response = stub.Check(
            health_pb2.HealthCheckRequest(service=service),
            timeout=timeout,
            metadata=bearer(token) if token else None,
        )
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
