"""What a training job is: its spec (catalog and training options), its state, its record."""

from __future__ import annotations

import dataclasses
import enum
import time
from pathlib import Path
from typing import Any

from topicproj.models.core.options import TrainOptions
from topicproj.models.data.formats import FORMATS
from topicproj.models.errors import OptionError
from topicproj.service.errors import InvalidInput, NotFound
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
    parent: str | None = None  # the registry version it trains from; None: from scratch
    add_topics: int = 0  # new topics on top of the parent's

    def to_record(self) -> dict[str, Any]:
        return {
            "catalog": str(self.catalog),
            "format": self.format,
            "options": self.options.to_dict(),
            "activate_on_success": self.activate_on_success,
            "parent": self.parent,
            "add_topics": self.add_topics,
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> TrainSpec:
        if "options" in record:
            options = TrainOptions(**record["options"])
        else:  # a record written before the options were one object: flat, 0 for the default
            legacy = {"topics": "n_topics", "seed": "random_state"}
            given = {
                legacy.get(k, k): v
                for k, v in record.items()
                if k in (*legacy, "activation", "min_df", "max_epochs", "learning_rate", "l1")
                and v is not None
            }
            options = TrainOptions(**given)
        return cls(
            catalog=Path(record["catalog"]),
            format=record["format"],
            options=options,
            activate_on_success=bool(record["activate_on_success"]),
            parent=record.get("parent"),
            add_topics=int(record.get("add_topics", 0)),
        )


def spec_from_request(
    request: pb.StartTrainingRequest,
    catalog: Path,
    parent: str | None = None,
    parent_options: TrainOptions | None = None,
) -> TrainSpec:
    """The spec of a `StartTrainingRequest`: its options over the base options, checked.

    The base is the parent's options when the job trains from `parent`, else `TrainOptions`'
    defaults. Each option of the request's `TrainingOptions` has presence; the ones set
    replace the base, and `TrainOptions` says which proto field is which option. A child keeps
    its parent's activation, and its topic count plus `add_topics`; asking for others is
    refused.
    """
    if not catalog.is_file():
        raise NotFound(f"no catalog file {catalog.name!r}")
    if request.format and request.format not in FORMATS:
        raise InvalidInput(f"{request.format!r}: expected one of {', '.join(FORMATS)}", "format")
    given = {
        option: _value(request.options, field)
        for field, option in TrainOptions.proto_fields().items()
    }
    given = {option: value for option, value in given.items() if value is not None}
    add = request.add_topics
    if add and parent_options is None:
        raise InvalidInput("add_topics grows a parent's topics; give no from_scratch", "add_topics")
    base = parent_options or TrainOptions()
    if add:
        given.setdefault("n_topics", base.n_topics + add)
    try:
        options = base.replace(**given)
    except OptionError as e:  # named as the caller named it: the request's field
        field = _proto_name(e.option)
        raise InvalidInput(e.named(field), f"options.{field}") from None
    if parent_options is not None:
        wanted = {
            "n_topics": parent_options.n_topics + add,
            "activation": parent_options.activation,
        }
        for option, value in wanted.items():
            if getattr(options, option) != value:
                raise InvalidInput(
                    f"{_proto_name(option)} must be {value!r}: the parent {parent}'s"
                    + (f" plus add_topics={add}" if add and option == "n_topics" else "")
                    + "; a child keeps its parent's topics; set from_scratch to train anew",
                    f"options.{_proto_name(option)}",
                )
    return TrainSpec(
        catalog, request.format or None, options, request.activate_on_success, parent, add
    )


def _proto_name(option: str) -> str:
    """The `TrainingOptions` field of a `TrainOptions` option."""
    return {o: f for f, o in TrainOptions.proto_fields().items()}[option]


def _value(options: pb.TrainingOptions, field: str) -> Any:
    """A field's value, or None when unset. A repeated field has no presence: empty is unset."""
    value = getattr(options, field)
    if options.DESCRIPTOR.fields_by_name[field].is_repeated:
        return tuple(value) or None
    return value if options.HasField(field) else None


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
    updated: float = dataclasses.field(default_factory=time.time)
    started: float = 0.0  # when it began running; 0 while queued
    revision: int = 0  # bumped at every change; watchers wait for it to move

    @property
    def max_epochs(self) -> int:
        return self.spec.options.max_epochs
