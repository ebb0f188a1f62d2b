"""Access control: a bearer token on the RPCs that change what is served, and TLS.

The token travels as `authorization: Bearer <token>` metadata and is compared in constant
time, so the comparison does not leak how much of a guess was right. Without TLS the token
crosses the network in the clear; serve over TLS wherever the network is not trusted.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc

from topicproj.service.client.channel import HEADER
from topicproj.service.errors import Unauthenticated

from .interceptors import OIP_PREFIX, SERVICE_PREFIX

# The RPCs that change state. Everything else (projection, model info, health, reflection)
# is open unless `protect_all` is set.
MUTATING = frozenset(
    {
        SERVICE_PREFIX + "ActivateModel",
        SERVICE_PREFIX + "SetTopicLabels",
        SERVICE_PREFIX + "StartTraining",
        SERVICE_PREFIX + "UploadCatalog",
        SERVICE_PREFIX + "CancelTrainingJob",
    }
)


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls without the right token with UNAUTHENTICATED, before any handler runs."""

    def __init__(self, token: str, *, protect_all: bool = False) -> None:
        if not token:
            raise ValueError("the auth token must not be empty")
        self._expected = token.encode()
        self.protect_all = protect_all

    def _allowed(self, details: grpc.HandlerCallDetails) -> bool:
        metadata = details.invocation_metadata or ()  # type: ignore[attr-defined]
        given = [v for k, v in metadata if k == HEADER]
        # Two authorization headers are ambiguous (a proxy may check one, us the other).
        if len(given) != 1:
            return False
        value = given[0].encode() if isinstance(given[0], str) else given[0]
        scheme, _, credentials = value.partition(b" ")
        # The scheme is case-insensitive (RFC 7235, 2.1); the token is compared exactly, in
        # constant time.
        if scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(credentials.strip(b" "), self._expected)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method: str = details.method  # type: ignore[attr-defined]
        handler = await continuation(details)
        if handler is None or not (self.protect_all or method in MUTATING):
            return handler
        if self._allowed(details):
            return handler
        return _refusing(handler, ours=method.startswith((SERVICE_PREFIX, OIP_PREFIX)))


def _refusing(handler: grpc.RpcMethodHandler, *, ours: bool) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that refuses the call."""

    async def refuse(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if ours:  # our interceptor maps it, and counts the call as UNAUTHENTICATED
            raise Unauthenticated()
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(Unauthenticated()))

    async def refuse_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
        await refuse(request, context)
        yield  # never reached; makes this an async generator, as streaming handlers are

    kinds = {
        "unary_unary": (grpc.unary_unary_rpc_method_handler, refuse),
        "unary_stream": (grpc.unary_stream_rpc_method_handler, refuse_stream),
        "stream_unary": (grpc.stream_unary_rpc_method_handler, refuse),
        "stream_stream": (grpc.stream_stream_rpc_method_handler, refuse_stream),
    }
    for kind, (make, behaviour) in kinds.items():
        if getattr(handler, kind) is not None:
            return make(
                behaviour,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
    return handler


def server_credentials(cert: Path, key: Path) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
