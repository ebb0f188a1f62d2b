"""Service errors, and the one table that maps every error to a gRPC status.

Handlers raise plain exceptions; the interceptor turns them into statuses with `status_for`.
Where a client can act on an error, the status carries a google.rpc detail: INVALID_ARGUMENT a
`BadRequest` naming the field at fault (`item_list.items[3].weights`), RESOURCE_EXHAUSTED a
`RetryInfo` with the delay to wait. Anything not listed becomes INTERNAL with a generic message,
so internals never leak to clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

from topicproj.models.errors import ModelDirectoryError, NotFittedError, UnknownVersion


class ServiceError(Exception):
    """Base class: `reason` is the message the client sees."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidInput(ServiceError, ValueError):
    """The request is malformed. `field` is the path of the field at fault, as protobuf names
    it (`item_list.items[3].weights`, `inputs[1].shape`), when there is one."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.description = reason


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


class Unsupported(ServiceError):
    """A request this server's configuration cannot carry out (the message says which)."""


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
    def __init__(self, queued: int, limit: int, retry_after_s: float) -> None:
        super().__init__(
            f"server is overloaded: {queued} items queued, limit {limit}; retry with backoff"
        )
        self.retry_after_s = retry_after_s


class NonFiniteOutput(ServiceError):
    """The model answered inf or NaN: the requests of that batch fail rather than get it."""

    def __init__(self) -> None:
        super().__init__(
            "the served model produced a non-finite result for this batch; nothing was "
            "answered (see the server log and topicproj_nonfinite_batches_total)"
        )


class QuotaExceeded(ServiceError):
    """A shared limit is used up for now (queued keywords, upload space): retry later.

    `subject` names the quota in the `google.rpc.QuotaFailure` detail; `retry_after_s`, when
    given, also goes out as a `RetryInfo`."""

    def __init__(self, subject: str, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.subject = subject
        self.retry_after_s = retry_after_s


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
    (Unsupported, grpc.StatusCode.FAILED_PRECONDITION),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (TooMany, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (NoDataRoot, grpc.StatusCode.FAILED_PRECONDITION),
    (QueueFull, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (QuotaExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (DeadlineExpired, grpc.StatusCode.DEADLINE_EXCEEDED),
    (NonFiniteOutput, grpc.StatusCode.INTERNAL),
    (ShuttingDown, grpc.StatusCode.UNAVAILABLE),
    (ModelDirectoryError, grpc.StatusCode.FAILED_PRECONDITION),
    (NotFittedError, grpc.StatusCode.FAILED_PRECONDITION),
]


@dataclass
class Status:
    """What a client gets for an error: code, message, and the google.rpc details."""

    code: grpc.StatusCode
    message: str
    details: list[Message] = field(default_factory=list)
    retry_after_s: float | None = None  # also sent as the grpc-retry-pushback-ms trailer

    def to_rpc_status(self) -> status_pb2.Status:
        packed = []
        for detail in self.details:
            any_detail = any_pb2.Any()
            any_detail.Pack(detail)
            packed.append(any_detail)
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=packed)


def status_for(error: BaseException) -> Status:
    """The status, message and details a client gets for `error`."""
    for kind, code in _STATUS:
        if isinstance(error, kind):
            status = Status(code, str(error))
            if isinstance(error, InvalidInput) and error.field:
                violation = error_details_pb2.BadRequest.FieldViolation(
                    field=error.field, description=error.description
                )
                status.details.append(error_details_pb2.BadRequest(field_violations=[violation]))
            if isinstance(error, QuotaExceeded):
                violation = error_details_pb2.QuotaFailure.Violation(
                    subject=error.subject, description=error.reason
                )
                status.details.append(error_details_pb2.QuotaFailure(violations=[violation]))
            if isinstance(error, QueueFull | QuotaExceeded) and error.retry_after_s is not None:
                delay = duration_pb2.Duration()
                delay.FromNanoseconds(round(error.retry_after_s * 1e9))
                status.details.append(error_details_pb2.RetryInfo(retry_delay=delay))
                status.retry_after_s = error.retry_after_s
            return status
    return Status(grpc.StatusCode.INTERNAL, "internal error; see the server log")
