"""`TrainOptions`: every option of training a topic model, and its default, written once.

The estimator's parameters (`TopicModel`), the training loop, the `topicproj train` and
`topicproj jobs start` flags and the gRPC `TrainRequest` mapping all derive from this class,
so a default changes in one place. Each field's metadata carries its help text, and where the
name differs elsewhere, its command-line flag (`flag`) and its field of the gRPC contract's
`TrainingOptions` (`proto`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

ACTIVATIONS = ("relu", "leaky_relu", "prelu", "overlap")  # served, and the study's baselines
CANDIDATE_FORMS = (  # research only: models.research.candidates
    "overlap_sigmoid",
    "overlap_power",
    "overlap_shift",
    "overlap_coverage",
    "overlap_capped",
    "overlap_hard",
    "overlap_quantile",
    "overlap_target",
    "overlap_coverage_target",
    "overlap_joint_target",
)
ALL_ACTIVATIONS = ACTIVATIONS + CANDIDATE_FORMS
INITS = ("nndsvda", "nndsvd", "nndsvdar", "random", "lda")
# Upper bounds of the float options. Adam's steps are about the learning rate in size, so a
# rate above 1 moves weights in [0, 1] by more than their range at every step; an L1 weight
# above 100 drowns the likelihood (about 1 to 10 per item) and trains every topic to zero.
MAX_LEARNING_RATE = 1.0
MAX_L1 = 100.0


def _opt(default: Any, help: str, **meta: Any) -> Any:
    return field(default=default, metadata={"help": help, **meta})


@dataclass(frozen=True)
class TrainOptions:
    n_topics: int = _opt(50, "number of topics", flag="--topics", proto="topics")
    activation: str = _opt("overlap", "activation of the projector", choices=ALL_ACTIVATIONS)
    min_df: int = _opt(3, "keep keywords on at least this many items")
    max_vocabulary: int | None = _opt(None, "keep at most this many keywords, most frequent first")
    init: str = _opt(
        "nndsvda", "how topics start: scikit-learn NMF with this init, or LDA", choices=INITS
    )
    max_epochs: int = _opt(200, "most epochs; early stopping may end sooner")
    patience: int = _opt(10, "epochs without a better validation loss before stopping")
    batch_size: int = _opt(256, "items per optimiser step")
    learning_rate: float = _opt(1e-3, "Adam learning rate")
    mask_rate: float = _opt(0.4, "share of an item's keywords hidden from the input")
    l1: float = _opt(1e-2, "penalty on the sum of an item's activations (sparsity)")
    target_zeros: float = _opt(
        0.5,
        "share of zero activations a targeted gate (overlap_target, ...) is held to in "
        "training, by a multiplier in place of the L1 term; other activations ignore it",
    )
    validation_fraction: float = _opt(0.1, "share of items held out for early stopping")
    random_state: int = _opt(
        0, "seed of the initialisation and the training order", flag="--seed", proto="seed"
    )

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first option out of its range."""
        if self.activation not in ALL_ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {', '.join(ALL_ACTIVATIONS)}, got {self.activation!r}"
            )
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if not _is_int(self.n_topics) or self.n_topics < 2:
            raise ValueError(f"n_topics must be at least 2, got {self.n_topics!r}")
        for name in ("min_df", "max_epochs", "patience", "batch_size"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.max_vocabulary is not None and (
            not _is_int(self.max_vocabulary) or self.max_vocabulary < 1
        ):
            raise ValueError(f"max_vocabulary must be >= 1, got {self.max_vocabulary!r}")
        # Every float is checked finite first: inf and NaN pass `> 0` or fail it silently, and
        # a learning rate of inf trains a model of NaN that would otherwise be served.
        for name in ("learning_rate", "mask_rate", "l1", "target_zeros", "validation_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        if not 0.0 < self.mask_rate < 1.0:
            raise ValueError(f"mask_rate must be in (0, 1), got {self.mask_rate}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        if not 0.0 < self.learning_rate <= MAX_LEARNING_RATE:
            raise ValueError(
                f"learning_rate must be in (0, {MAX_LEARNING_RATE}], got {self.learning_rate}"
            )
        if not 0.0 <= self.l1 <= MAX_L1:
            raise ValueError(f"l1 must be in [0, {MAX_L1}], got {self.l1}")
        if not 0.0 <= self.target_zeros < 1.0:
            raise ValueError(f"target_zeros must be in [0, 1), got {self.target_zeros}")

    @classmethod
    def fields(cls) -> tuple[dataclasses.Field[Any], ...]:
        return dataclasses.fields(cls)

    @classmethod
    def proto_fields(cls) -> dict[str, str]:
        """Proto field name -> option name: `TrainingOptions` in the gRPC contract carries
        every option, under the option's name unless its metadata says otherwise."""
        return {f.metadata.get("proto", f.name): f.name for f in cls.fields()}

    def replace(self, **changes: Any) -> TrainOptions:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


DEFAULTS = TrainOptions()

# The demo model of `make run` and `make demo-model`: trained on the synthetic catalog in seconds
# even on a busy 2-core machine, so a higher learning rate and fewer epochs than the defaults.
DEMO = TrainOptions(n_topics=24, min_df=2, learning_rate=5e-3, max_epochs=60)
