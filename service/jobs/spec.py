"""What a training job is: its spec (catalog and training options), its state, its record."""

from __future__ import annotations

import dataclasses
import enum
import time
from pathlib import Path
from typing import Any

from models.core.options import TrainOptions
from models.data.catalog import FORMATS
from service.errors import InvalidInput, NotFound
from topicproj.v1 import topicproj_pb2 as pb


class JobState(enum.IntEnum):  # the values of TrainingJob.State
    QUEUED = 1
    RUNNING = 2
    SUCCEEDED = 3
    FAILED = 4
    CANCELLED = 5


ENDED = (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclasses.dataclass
class TrainSpec:
    """What to train, checked: everything the child process needs, picklable."""

    catalog: Path
    format: str | None
    options: TrainOptions
    activate_on_success: bool

    def to_record(self) -> dict[str, Any]:
        return {
            "catalog": str(self.catalog),
            "format": self.format,
            "options": self.options.to_dict(),
            "activate_on_success": self.activate_on_success,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TrainSpec:
        return cls(
            catalog=Path(record["catalog"]),
            format=record["format"],
            options=TrainOptions(**record["options"]),
            activate_on_success=bool(record["activate_on_success"]),
        )


def spec_from_request(request: pb.TrainRequest, catalog: Path) -> TrainSpec:
    """The spec of a `TrainRequest`: its options over `TrainOptions`' defaults, checked.

    The request's option fields are the ones `TrainOptions` marks with a proto name; a field
    left at zero (or empty) means the default.
    """
    if not catalog.is_file():
        raise NotFound(f"no catalog file {catalog.name!r}")
    if request.format and request.format not in FORMATS:
        raise InvalidInput(f"format {request.format!r}: expected one of {', '.join(FORMATS)}")
    if not request.topics:
        raise InvalidInput("topics is required (at least 2)")
    given = {
        option: getattr(request, field)
        for field, option in TrainOptions.proto_fields().items()
        if getattr(request, field)
    }
    try:
        options = TrainOptions(**given)
    except ValueError as e:
        raise InvalidInput(str(e)) from None
    return TrainSpec(catalog, request.format or None, options, request.activate_on_success)


@dataclasses.dataclass
class Job:
    id: str
    spec: TrainSpec
    state: JobState = JobState.QUEUED
    epoch: int = 0
    train_loss: float = 0.0
    validation_loss: float = 0.0
    error: str = ""
    model_version: str = ""
    activated: bool = False
    created: float = dataclasses.field(default_factory=time.time)
    revision: int = 0  # bumped at every change; watchers wait for it to move

    @property
    def max_epochs(self) -> int:
        return self.spec.options.max_epochs
