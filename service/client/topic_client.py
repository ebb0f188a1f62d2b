"""Python clients for the projection service: `TopicClient` (blocking) and `AsyncTopicClient`.

Items go in as plain Python (keyword lists, or dicts with `id`, `keywords` and `weights`), and
projections come back as numpy arrays.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from .channel import aio_channel, bearer, channel
from .wire import ItemLike, Projections, _ids, as_dict, catalog_chunks, from_response, to_request


class TopicClient:
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
    ) -> None:
        self.timeout = timeout
        self._metadata = bearer(token) if token else None
        self._channel = channel(address, ca_file=ca_file)
        self._stub = pb_grpc.TopicProjectionStub(self._channel)

    def project(
        self,
        items: Sequence[ItemLike],
        *,
        top_k: int = 0,
        omit_dense: bool = False,
        model_version: str = "",
        dense_bytes: bool = True,
        columnar: bool = True,
    ) -> Projections:
        """Project `items`: keyword lists, or dicts with `id`, `keywords` and `weights`.

        `columnar` (the default) sends the items packed and gets the answer as columns, the
        fastest form; without it, `dense_bytes` (the default) still returns the dense result
        as one float32 buffer rather than repeated floats. The result is the same either way.
        """
        request = to_request(items, top_k, omit_dense, model_version, dense_bytes, columnar)
        response = self._stub.Project(request, timeout=self.timeout, metadata=self._metadata)
        return from_response(response, [it.id for it in request.items] or _ids(items))

    def get_model(self, top_keywords: int = 10) -> dict[str, Any]:
        request = pb.GetModelRequest(top_keywords=top_keywords)
        return as_dict(self._stub.GetModel(request, timeout=self.timeout, metadata=self._metadata))

    def list_models(self) -> list[dict[str, Any]]:
        response = self._stub.ListModels(
            pb.ListModelsRequest(), timeout=self.timeout, metadata=self._metadata
        )
        return [as_dict(m) for m in response.models]

    def activate_model(self, version: str) -> dict[str, Any]:
        request = pb.ActivateModelRequest(version=version)
        return as_dict(
            self._stub.ActivateModel(request, timeout=self.timeout, metadata=self._metadata)
        )

    # -- training through the service (servers with --model-root) -------------------------

    def upload_catalog(self, path: str | Path, chunk_bytes: int = 1 << 20) -> str:
        """Send a catalog file; returns the upload id for `start_training`."""
        chunks = catalog_chunks(Path(path), chunk_bytes)
        reply = self._stub.UploadCatalog(chunks, timeout=None, metadata=self._metadata)
        return str(reply.upload_id)

    def start_training(self, topics: int, **fields: Any) -> dict[str, Any]:
        """Queue a training job on a catalog under the server's data root, or an upload.

        `fields` are those of `TrainRequest`: catalog_path or upload_id, activate_on_success,
        and the training options format, activation, min_df, max_epochs, learning_rate, l1,
        seed. A misspelt one raises ValueError before anything is sent.
        """
        request = pb.TrainRequest(topics=topics, **fields)
        reply = self._stub.StartTraining(request, timeout=self.timeout, metadata=self._metadata)
        return as_dict(reply)

    def training_job(self, job_id: str) -> dict[str, Any]:
        request = pb.TrainingJobRequest(job_id=job_id)
        reply = self._stub.GetTrainingJob(request, timeout=self.timeout, metadata=self._metadata)
        return as_dict(reply)

    def watch_training_job(self, job_id: str) -> Iterator[dict[str, Any]]:
        """The job's state now and at every change, until it ends."""
        request = pb.TrainingJobRequest(job_id=job_id)
        for reply in self._stub.WatchTrainingJob(request, metadata=self._metadata):
            yield as_dict(reply)

    def cancel_training_job(self, job_id: str) -> dict[str, Any]:
        request = pb.TrainingJobRequest(job_id=job_id)
        reply = self._stub.CancelTrainingJob(request, timeout=self.timeout, metadata=self._metadata)
        return as_dict(reply)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> TopicClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncTopicClient:
    """asyncio client, as `TopicClient`. Use as an async context manager, or await `close()`."""

    def __init__(
        self,
        address: str,
        *,
        timeout: float | None = 30.0,
        token: str | None = None,
        ca_file: str | Path | None = None,
    ) -> None:
        self.timeout = timeout
        self._metadata = bearer(token) if token else None
        self._channel = aio_channel(address, ca_file=ca_file)
        self._stub = pb_grpc.TopicProjectionStub(self._channel)

    async def project(
        self,
        items: Sequence[ItemLike],
        *,
        top_k: int = 0,
        omit_dense: bool = False,
        model_version: str = "",
        dense_bytes: bool = True,
        columnar: bool = True,
    ) -> Projections:
        """Project `items`, as `TopicClient.project` does."""
        request = to_request(items, top_k, omit_dense, model_version, dense_bytes, columnar)
        response = await self._stub.Project(request, timeout=self.timeout, metadata=self._metadata)
        return from_response(response, [it.id for it in request.items] or _ids(items))

    async def get_model(self, top_keywords: int = 10) -> dict[str, Any]:
        request = pb.GetModelRequest(top_keywords=top_keywords)
        return as_dict(
            await self._stub.GetModel(request, timeout=self.timeout, metadata=self._metadata)
        )

    async def list_models(self) -> list[dict[str, Any]]:
        response = await self._stub.ListModels(
            pb.ListModelsRequest(), timeout=self.timeout, metadata=self._metadata
        )
        return [as_dict(m) for m in response.models]

    async def activate_model(self, version: str) -> dict[str, Any]:
        request = pb.ActivateModelRequest(version=version)
        info = await self._stub.ActivateModel(
            request, timeout=self.timeout, metadata=self._metadata
        )
        return as_dict(info)

    async def upload_catalog(self, path: str | Path, chunk_bytes: int = 1 << 20) -> str:
        chunks = catalog_chunks(Path(path), chunk_bytes)
        reply = await self._stub.UploadCatalog(chunks, timeout=None, metadata=self._metadata)
        return str(reply.upload_id)

    async def start_training(self, topics: int, **fields: Any) -> dict[str, Any]:
        request = pb.TrainRequest(topics=topics, **fields)
        call = self._stub.StartTraining
        return as_dict(await call(request, timeout=self.timeout, metadata=self._metadata))

    async def training_job(self, job_id: str) -> dict[str, Any]:
        request = pb.TrainingJobRequest(job_id=job_id)
        call = self._stub.GetTrainingJob
        return as_dict(await call(request, timeout=self.timeout, metadata=self._metadata))

    async def watch_training_job(self, job_id: str) -> AsyncIterator[dict[str, Any]]:
        request = pb.TrainingJobRequest(job_id=job_id)
        async for reply in self._stub.WatchTrainingJob(request, metadata=self._metadata):
            yield as_dict(reply)

    async def cancel_training_job(self, job_id: str) -> dict[str, Any]:
        request = pb.TrainingJobRequest(job_id=job_id)
        call = self._stub.CancelTrainingJob
        return as_dict(await call(request, timeout=self.timeout, metadata=self._metadata))

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

    with channel(address, ca_file=ca_file) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        response = stub.Check(
            health_pb2.HealthCheckRequest(service=service),
            timeout=timeout,
            metadata=bearer(token) if token else None,
        )
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
