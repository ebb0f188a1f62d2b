"""Service errors, and the one table that maps every error to a gRPC status code.

Handlers raise plain exceptions; `interceptors.ErrorInterceptor` turns them into statuses with
`status_for`. Anything not listed becomes INTERNAL with a generic message, so internals never
leak to clients.
"""

from __future__ import annotations

import grpc

from models.errors import ModelDirectoryError, NotFittedError, UnknownVersion


class ServiceError(Exception):
    """Base class: `reason` is the message the client sees."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidInput(ServiceError, ValueError):
    """The request is malformed; `item` is the index of the offending item, when there is one."""

    def __init__(self, reason: str, item: int | None = None) -> None:
        super().__init__(f"item {item}: {reason}" if item is not None else reason)
        self.item = item


class ModelVersionNotFound(ServiceError, LookupError):
    def __init__(self, asked: str, served: str) -> None:
        super().__init__(f"model version {asked!r} is not served here (serving {served!r})")
        self.asked = asked
        self.served = served


class NoModelRoot(ServiceError):
    def __init__(self) -> None:
        super().__init__(
            "this server serves one model directory; start it with --model-root to manage versions"
        )


class Unauthenticated(ServiceError):
    def __init__(self) -> None:
        super().__init__("missing or wrong token: send 'authorization: Bearer <token>'")


class PermissionDenied(ServiceError, PermissionError):
    """The request names something the server will not touch (a path outside its data root)."""


class NotFound(ServiceError, LookupError):
    """A job, an upload or a catalog file that does not exist."""


class TooMany(ServiceError):
    """Refused for lack of room: too many jobs queued, an upload over the size limit."""


class NoDataRoot(ServiceError):
    def __init__(self) -> None:
        super().__init__("this server has no --data-root; upload the catalog instead")


class QueueFull(ServiceError):
    def __init__(self, queued: int, limit: int) -> None:
        super().__init__(
            f"server is overloaded: {queued} items queued, limit {limit}; retry with backoff"
        )


class DeadlineExpired(ServiceError):
    def __init__(self) -> None:
        super().__init__("deadline passed while the request waited in the queue")


class ShuttingDown(ServiceError):
    def __init__(self) -> None:
        super().__init__("server is shutting down")


_STATUS: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (ModelVersionNotFound, grpc.StatusCode.NOT_FOUND),
    (UnknownVersion, grpc.StatusCode.NOT_FOUND),
    (NoModelRoot, grpc.StatusCode.FAILED_PRECONDITION),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (TooMany, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (NoDataRoot, grpc.StatusCode.FAILED_PRECONDITION),
    (QueueFull, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (DeadlineExpired, grpc.StatusCode.DEADLINE_EXCEEDED),
    (ShuttingDown, grpc.StatusCode.UNAVAILABLE),
    (ModelDirectoryError, grpc.StatusCode.FAILED_PRECONDITION),
    (NotFittedError, grpc.StatusCode.FAILED_PRECONDITION),
]


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and client-facing message for `error`."""
    for kind, code in _STATUS:
        if isinstance(error, kind):
            return code, str(error)
    return grpc.StatusCode.INTERNAL, "internal error; see the server log"
