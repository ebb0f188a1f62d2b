"""The one place where errors become gRPC statuses, and where every RPC is counted and timed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from grpc_status import rpc_status

from topicproj.oip.v2 import grpc_predict_v2_pb2 as oip
from topicproj.service.errors import (
    QueueFull,
    QuotaExceeded,
    ShuttingDown,
    TooLarge,
    status_for,
)
from topicproj.service.metrics import ServiceMetrics
from topicproj.v1 import topicproj_pb2 as pb

from .tracing import Tracing

log = logging.getLogger(__name__)

SERVICE_PREFIX = f"/{pb.DESCRIPTOR.services_by_name['TopicProjectionService'].full_name}/"
OIP_PREFIX = f"/{oip.DESCRIPTOR.services_by_name['GRPCInferenceService'].full_name}/"


class ErrorAndMetricsInterceptor(grpc.aio.ServerInterceptor):
    """Maps exceptions to status codes (via `errors.status_for`) and records RPC metrics.

    The projection service's methods and the Open Inference Protocol's are wrapped; health and
    reflection pass through.
    """

    def __init__(self, metrics: ServiceMetrics, tracing: Tracing | None = None) -> None:
        self.metrics = metrics
        self.tracing = tracing
        # Set when the server stops taking calls: new ones get UNAVAILABLE (retryable, and
        # clients move to another replica) while those in flight finish.
        self.closing = False
        self.active = 0  # calls being handled now
        # Labelled children, looked up once: `labels()` takes a lock and builds a key on every
        # call, a cost paid twice per RPC otherwise.
        self._done: dict[tuple[str, grpc.StatusCode], tuple[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method: str = details.method  # type: ignore[attr-defined]
        if handler is None or not method.startswith((SERVICE_PREFIX, OIP_PREFIX)):
            return handler
        rpc = method
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(rpc, handler.unary_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream is not None:
            return grpc.stream_stream_rpc_method_handler(
                self._stream(rpc, handler.stream_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._unary_stream(rpc, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._stream_unary(rpc, handler.stream_unary),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _count(self, method: str, request: Any) -> None:
        rpc = method.rsplit("/", 1)[1]
        if isinstance(request, pb.ProjectStreamRequest):
            request = request.request
        if isinstance(request, pb.ProjectRequest):  # items, or the same number sent packed
            n = len(request.item_list.items) or len(request.packed.keyword_counts)
            self.metrics.items.labels(rpc).inc(n)

    @contextlib.asynccontextmanager
    async def _observed(
        self, method: str, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[None]:
        """Count, time and trace one RPC, and turn an exception into its status code."""
        rpc = method.rsplit("/", 1)[1]
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        self.metrics.inflight.inc()
        self.active += 1
        traced = (
            self.tracing.rpc(method, context)
            if self.tracing is not None
            else contextlib.nullcontext()
        )
        span = traced.__enter__()
        try:
            if self.closing:
                raise ShuttingDown()
            yield
        except (asyncio.CancelledError, GeneratorExit):
            # GeneratorExit: a streaming call whose client went away is closed, not cancelled
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception as e:
            status = status_for(e)
            code = status.code
            if isinstance(e, TooLarge):
                self.metrics.refused.labels(e.limit).inc()
            elif isinstance(e, QuotaExceeded):
                self.metrics.refused.labels(e.subject).inc()
            elif isinstance(e, QueueFull):
                self.metrics.refused.labels("max_queue_items").inc()
            if code == grpc.StatusCode.INTERNAL:
                log.error("unexpected error in %s", rpc, exc_info=e)
            trailing: tuple[tuple[str, str | bytes], ...] = ()
            if status.details:  # google.rpc.Status, in the grpc-status-details-bin trailer
                trailing += tuple(rpc_status.to_status(status.to_rpc_status()).trailing_metadata)
            if status.retry_after_s is not None:  # the delay gRPC's own retry policy honours
                trailing += (("grpc-retry-pushback-ms", str(round(status.retry_after_s * 1000))),)
            await context.abort(code, status.message, trailing_metadata=trailing)
        finally:
            if code == grpc.StatusCode.OK and context.cancelled():
                code = grpc.StatusCode.CANCELLED  # the client cancelled: not a success
            self._record(rpc, code, start)
            if span is not None:
                span.set_attribute("rpc.grpc.status_code", code.value[0])
            traced.__exit__(None, None, None)

    def _unary(self, rpc: str, behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with self._observed(rpc, context):
                self._count(rpc, request)
                return await behaviour(request, context)

        return wrapper

    def _stream(self, rpc: str, behaviour: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
        async def counted(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
            async for request in requests:
                self._count(rpc, request)
                yield request

        async def wrapper(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            async with self._observed(rpc, context):
                async for response in behaviour(counted(requests), context):
                    yield response

        return wrapper

    def _unary_stream(
        self, rpc: str, behaviour: Callable[..., AsyncIterator[Any]]
    ) -> Callable[..., Any]:
        async def wrapper(request: Any, context: grpc.aio.ServicerContext) -> Any:
            async with self._observed(rpc, context):
                async for response in behaviour(request, context):
                    yield response

        return wrapper

    def _stream_unary(
        self, rpc: str, behaviour: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Any]:
        async def wrapper(requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
            async with self._observed(rpc, context):
                return await behaviour(requests, context)

        return wrapper

    def _record(self, rpc: str, code: grpc.StatusCode, start: float) -> None:
        self.metrics.inflight.dec()
        self.active -= 1
        children = self._done.get((rpc, code))
        if children is None:
            m = self.metrics
            children = self._done[rpc, code] = (
                m.requests.labels(rpc, code.name),
                m.latency.labels(rpc, code.name),
            )
        requests, latency = children
        requests.inc()
        latency.observe(time.perf_counter() - start)
