"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .objectstore import S3Server, start_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One S3-compatible server (moto) for the session; each test takes its own bucket."""
    pytest.importorskip("moto.server")
    server = start_s3_server()
    yield server
    server.stop()


@pytest.fixture
def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server, with this process's AWS variables pointing at it."""
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    return s3_server
