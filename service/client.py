"""Python clients for the projection service: `TopicClient` (blocking) and `AsyncTopicClient`.

Items go in as plain Python (keyword lists, or dicts with `id`, `keywords` and `weights`), and
projections come back as numpy arrays.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from google.protobuf.json_format import MessageToDict

from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from .auth import aio_channel, bearer, channel

ItemLike = Sequence[str] | Mapping[str, Any]


@dataclass
class Projections:
    """The projections of one request, row i for item i.

    topics  : float32 array of shape (n_items, n_topics); empty with `omit_dense`
    top     : per item, a list of (topic, score), best first
    """

    model_version: str
    ids: list[str]
    topics: np.ndarray
    top: list[list[tuple[int, float]]]
    known_keywords: np.ndarray
    unknown_keywords: np.ndarray
    active_topics: np.ndarray


SEPARATOR = "\x1f"  # ends every keyword of `ProjectRequest.packed_keywords`


@dataclass
class _Item:
    id: str
    keywords: list[str]
    weights: list[float]


def _items(items: Sequence[ItemLike]) -> list[_Item]:
    out = []
    for i, item in enumerate(items):
        if isinstance(item, Mapping):
            if isinstance(item.get("keywords"), str):
                raise TypeError(f"item {i}: 'keywords' is a string; pass a list of keywords")
            out.append(
                _Item(
                    str(item.get("id", "")),
                    list(item.get("keywords", [])),
                    list(item.get("weights", [])),
                )
            )
        elif isinstance(item, str):
            raise TypeError(f"item {i} is a string; pass a list of keywords")
        else:
            out.append(_Item("", list(item), []))
    return out


def to_request(
    items: Sequence[ItemLike],
    top_k: int = 0,
    omit_dense: bool = False,
    model_version: str = "",
    dense_bytes: bool = True,
    columnar: bool = False,
) -> pb.ProjectRequest:
    """The request for `items`. With `columnar`, items go packed (unless a keyword holds the
    separator) and the answer comes back in columns: the fastest form on both sides."""
    parsed = _items(items)
    request = pb.ProjectRequest(
        top_k=top_k,
        omit_dense=omit_dense,
        model_version=model_version,
        dense_bytes=dense_bytes,
        columnar=columnar,
    )
    keywords = [k for item in parsed for k in item.keywords]
    if columnar and not any(SEPARATOR in k for k in keywords):
        request.packed_keywords = "".join(k + SEPARATOR for k in keywords)
        request.packed_counts.extend([len(item.keywords) for item in parsed])
        if any(item.weights for item in parsed):
            for item in parsed:  # a wrong count is the server's to report, with the item
                request.packed_weights.extend(item.weights or [1.0] * len(item.keywords))
    else:
        add = request.items.add
        for item in parsed:
            add(id=item.id, keywords=item.keywords, weights=item.weights)
    return request


def from_response(response: pb.ProjectResponse, ids: Sequence[str] | None = None) -> Projections:
    """The projections of a response; `ids` fills in the item ids a columnar answer omits."""
    rows = response.projections
    if rows or not response.known_keywords:
        n = len(rows)
        ids = [p.id for p in rows]
        known = np.array([p.known_keywords for p in rows], dtype=np.int64)
        unknown = np.array([p.unknown_keywords for p in rows], dtype=np.int64)
        active = np.array([p.active_topics for p in rows], dtype=np.int64)
        top = [[(t.topic, t.score) for t in p.top] for p in rows]
    else:  # columnar
        n = len(response.known_keywords)
        ids = list(ids) if ids is not None else [""] * n
        known = np.array(response.known_keywords, dtype=np.int64)
        unknown = np.array(response.unknown_keywords, dtype=np.int64)
        active = np.array(response.active_topics, dtype=np.int64)
        bounds = np.concatenate([[0], np.cumsum(np.array(response.top_counts, dtype=np.int64))])
        pairs = list(zip(response.top_topics, response.top_scores, strict=True))
        top = [pairs[a:b] for a, b in itertools.pairwise(bounds.tolist())]
        if not response.top_counts:
            top = [[] for _ in range(n)]
    if response.dense:
        # One buffer for the whole response: no per-float Python objects on either side.
        topics = np.frombuffer(response.dense, dtype="<f4").reshape(n, response.topics)
    else:
        width = len(rows[0].topics) if rows else 0
        topics = np.array([p.topics for p in rows], dtype=np.float32).reshape(n, width)
    return Projections(
        model_version=response.model_version,
        ids=ids,
        topics=topics,
        top=top,
        known_keywords=known,
        unknown_keywords=unknown,
        active_topics=active,
    )


def _ids(items: Sequence[ItemLike]) -> list[str]:
    return [str(it.get("id", "")) if isinstance(it, Mapping) else "" for it in items]


def as_dict(message: Any) -> dict[str, Any]:
    """A response as plain Python: field names as in the proto, enums by name, defaults kept."""
    return MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


def catalog_chunks(path: Path, chunk_bytes: int) -> Iterator[pb.CatalogChunk]:
    """A file as `UploadCatalog` chunks, the name in the first (an empty file is one chunk)."""
    with open(path, "rb") as f:
        first = True
        while (data := f.read(chunk_bytes)) or first:
            yield pb.CatalogChunk(filename=path.name if first else "", data=data)
            first = False


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
