"""The training lease: which server process may add trained versions to a registry.

A server takes the lease when it starts (a new random token under `<root>/lease`) and hands the
token to each training child. The child adds its version only while the file still holds that
token, checked under an exclusive lock that a new server also takes to replace the token, so
the check and the rename are one step for everyone else. A child left running by a server
that was killed (and replaced) therefore cannot write into the new server's registry.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from topicproj.models.core.artifacts import replace_file
from topicproj.models.errors import TopicprojError

LEASE = "lease"
_LOCK = ".lease.lock"


class LeaseLost(TopicprojError, RuntimeError):
    """Another server took the lease: this process's training may no longer add versions."""


@contextlib.contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


class Lease:
    def __init__(self, root: str | Path, token: str) -> None:
        self.root = Path(root)
        self.token = token

    @classmethod
    def take(cls, root: str | Path) -> Lease:
        """A new lease on `root`; every earlier holder loses it."""
        root = Path(root)
        token = secrets.token_hex(16)
        with _locked(root):
            replace_file(root / LEASE, token + "\n")
        return cls(root, token)

    def current(self) -> str | None:
        try:
            return (self.root / LEASE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Run the body only while this lease is the current one, and no one can take it."""
        with _locked(self.root):
            if self.current() != self.token:
                raise LeaseLost(
                    f"the registry at {self.root} is owned by another server now; the version "
                    "trained for the server that started this job is not added"
                )
            yield
