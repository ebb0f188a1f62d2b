"""Domain errors raised by `models`.

They are plain Python exceptions carrying the data a message needs, so that callers
(the CLI, the gRPC service) can map them without parsing strings.
"""

from __future__ import annotations

from pathlib import Path


class TopicprojError(Exception):
    """Base class for every error this package raises on purpose."""


class CatalogError(TopicprojError, ValueError):
    """A catalog file could not be read: names the file, the row and the reason."""

    def __init__(self, path: str | Path, reason: str, *, row: int | None = None) -> None:
        self.path = str(path)
        self.row = row
        self.reason = reason
        where = f"{self.path}, row {row}" if row is not None else self.path
        super().__init__(f"{where}: {reason}")


class ModelDirectoryError(TopicprojError, ValueError):
    """A saved model directory is missing, incomplete or damaged."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"model directory {self.path}: {reason}")


class NotFittedError(TopicprojError, RuntimeError):
    """An estimator was used before `fit`."""


class UnknownVersion(TopicprojError, LookupError):
    """A model version that the registry does not hold."""

    def __init__(self, version: str, root: str | Path) -> None:
        self.version = version
        super().__init__(f"no model version {version!r} under {root}")


class StorageError(TopicprojError, OSError):
    """A file or URI could not be read or written: names it and what to fix."""

    def __init__(self, uri: str | Path, reason: str) -> None:
        self.uri = str(uri)
        self.reason = reason
        super().__init__(f"{self.uri}: {reason}")

    def __str__(self) -> str:  # OSError's own __str__ would show the args as a tuple
        return f"{self.uri}: {self.reason}"


class RowCountError(TopicprojError, RuntimeError):
    """A run's rows do not add up: read != projected + skipped, or projected != written."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(f"{where}: rows do not add up: {reason}")


class OutputExistsError(TopicprojError, FileExistsError):
    """An output that a run may not write into (another run's, or not a projection)."""

    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = reason
        super().__init__(f"{uri}: {reason}")

    def __str__(self) -> str:
        return f"{self.uri}: {self.reason}"


class NonFiniteError(TopicprojError, ArithmeticError):
    """A loss, a weight or an output that is inf or NaN: never trained on, stored or served."""
