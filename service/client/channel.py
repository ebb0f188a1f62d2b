"""Channels to a topicproj server: TLS or plaintext, retries, keepalive, the bearer token.

Retries are gRPC's own (the channel's service config): a call that gets UNAVAILABLE,
RESOURCE_EXHAUSTED or (from a server that is stopping) CANCELLED is tried again with
exponential backoff and jitter. An overloaded topicproj
server sends the delay it wants in `google.rpc.RetryInfo` and, for gRPC's retry policy, in the
`grpc-retry-pushback-ms` trailer, which the policy honours instead of its own backoff. Calls
that change state and could be repeated by a retry (StartTraining, UploadCatalog) are not
retried.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

HEADER = "authorization"
SERVICE = "topicproj.v1.TopicProjectionService"
# Safe to repeat: they read, or set what is already set (ActivateModel, CancelTrainingJob).
RETRIED_METHODS = (
    "Project",
    "ProjectStream",
    "GetModel",
    "ListModels",
    "ActivateModel",
    "SetTopicLabels",
    "GetTrainingJob",
    "ListTrainingJobs",
    "WatchTrainingJob",
    "CancelTrainingJob",
)


@dataclass(frozen=True)
class RetryPolicy:
    """gRPC's retry policy for the calls in RETRIED_METHODS (grpc caps attempts at 5)."""

    max_attempts: int = 5
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 5.0
    backoff_multiplier: float = 2.0
    # CANCELLED too: a server that stops cancels the calls that reached it but had not yet
    # been handed to a handler (grpc/grpc#41785), and the methods retried here are safe to
    # repeat. A call the client cancels itself is never retried.
    retryable_status_codes: tuple[str, ...] = ("UNAVAILABLE", "RESOURCE_EXHAUSTED", "CANCELLED")

    def service_config(self) -> str:
        policy = {
            "maxAttempts": self.max_attempts,
            "initialBackoff": f"{self.initial_backoff_s}s",
            "maxBackoff": f"{self.max_backoff_s}s",
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": list(self.retryable_status_codes),
        }
        names = [{"service": SERVICE, "method": m} for m in RETRIED_METHODS]
        return json.dumps({"methodConfig": [{"name": names, "retryPolicy": policy}]})


@dataclass(frozen=True)
class ChannelSettings:
    """How a client's channel behaves; every field can be overridden."""

    retry: RetryPolicy | None = field(default_factory=RetryPolicy)  # None: no retries
    # A ping after this long without traffic finds a connection that died silently (a NAT or a
    # load balancer that dropped it) before a call waits on it. The server accepts pings every
    # 20 s or more (service/serving/server.py).
    keepalive_time_s: float = 30.0
    keepalive_timeout_s: float = 10.0
    max_message_bytes: int = 64 * 1024 * 1024
    extra_options: tuple[tuple[str, Any], ...] = ()

    def options(self) -> list[tuple[str, Any]]:
        options: list[tuple[str, Any]] = [
            ("grpc.keepalive_time_ms", round(self.keepalive_time_s * 1000)),
            ("grpc.keepalive_timeout_ms", round(self.keepalive_timeout_s * 1000)),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.enable_retries", int(self.retry is not None)),
        ]
        if self.retry is not None:
            options.append(("grpc.service_config", self.retry.service_config()))
        return options + list(self.extra_options)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries `token`."""
    return ((HEADER, f"Bearer {token}"),)


def _credentials(ca_file: str | Path | None) -> grpc.ChannelCredentials | None:
    if ca_file is None:
        return None
    return grpc.ssl_channel_credentials(root_certificates=Path(ca_file).read_bytes())


def channel(
    address: str,
    *,
    ca_file: str | Path | None = None,
    settings: ChannelSettings | None = None,
) -> grpc.Channel:
    """A blocking channel: TLS trusting `ca_file` when given, else plaintext."""
    options = (settings or ChannelSettings()).options()
    creds = _credentials(ca_file)
    if creds is None:
        return grpc.insecure_channel(address, options=options)
    return grpc.secure_channel(address, creds, options=options)


def aio_channel(
    address: str,
    *,
    ca_file: str | Path | None = None,
    settings: ChannelSettings | None = None,
) -> grpc.aio.Channel:
    """The asyncio counterpart of `channel`."""
    options = (settings or ChannelSettings()).options()
    creds = _credentials(ca_file)
    if creds is None:
        return grpc.aio.insecure_channel(address, options=options)
    return grpc.aio.secure_channel(address, creds, options=options)
