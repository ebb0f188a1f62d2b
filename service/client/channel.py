"""Channels to a topicproj server: plaintext or TLS, and the bearer-token metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc

HEADER = "authorization"


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries `token`."""
    return ((HEADER, f"Bearer {token}"),)


def channel(
    address: str, *, ca_file: str | Path | None = None, options: Any = None
) -> grpc.Channel:
    """A blocking channel: TLS trusting `ca_file` when given, else plaintext."""
    if ca_file is None:
        return grpc.insecure_channel(address, options=options)
    creds = grpc.ssl_channel_credentials(root_certificates=Path(ca_file).read_bytes())
    return grpc.secure_channel(address, creds, options=options)


def aio_channel(
    address: str, *, ca_file: str | Path | None = None, options: Any = None
) -> grpc.aio.Channel:
    """The asyncio counterpart of `channel`."""
    if ca_file is None:
        return grpc.aio.insecure_channel(address, options=options)
    creds = grpc.ssl_channel_credentials(root_certificates=Path(ca_file).read_bytes())
    return grpc.aio.secure_channel(address, creds, options=options)
