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

from topicproj.models.errors import OptionError

ACTIVATIONS = ("relu", "leaky_relu", "prelu", "overlap")  # served, and the study's baselines
# Research forms: the lab builds them and registers them (`activation.register_form`); the core
# knows their names only, so that options validate and a server can say what it lacks.
CANDIDATE_FORMS = (
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
# The overlap gate, given neither an L1 weight nor a share of zeros, chooses its own share of
# zeros after training, from the catalog's items (`training/sparsity.py`): the default.
# `overlap_auto`, the name it had while it was opt-in, is kept so that those models and commands
# still work; both are served by the same kernel. docs/activation.md, "The activation: sparsity
# chosen from the data", has the figures that decided it.
CHOOSING = ("overlap", "overlap_auto")
ALL_ACTIVATIONS = (*ACTIVATIONS, "overlap_auto", *CANDIDATE_FORMS)
INITS = ("nndsvda", "nndsvd", "nndsvdar", "random", "lda")
DEFAULT_L1 = 1e-2  # the L1 weight where one is used and none was given
DEFAULT_TARGET_ZEROS = 0.5  # a targeted gate's share of zeros where none was given
# overlap_auto is trained held at this share (on training batches, which hide keywords: about
# 0.35 zeros on whole items), the densest it will choose; the choice then only shuts more gates.
CHOICE_TRAINING_ZEROS = 0.5
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
    max_df: float = _opt(
        1.0, "drop keywords on more than this share of the items, in (0, 1]; 1 keeps all"
    )
    stop_keywords: tuple[str, ...] = _opt(
        (),
        "keywords never learned, whatever their frequency (on the command line: a file, one "
        "keyword a line, # for comments)",
        metavar="FILE",
    )
    init: str = _opt(
        "nndsvda", "how topics start: scikit-learn NMF with this init, or LDA", choices=INITS
    )
    max_epochs: int = _opt(200, "most epochs; early stopping may end sooner")
    patience: int = _opt(10, "epochs without a better validation loss before stopping")
    batch_size: int = _opt(256, "items per optimiser step")
    learning_rate: float = _opt(1e-3, "Adam learning rate")
    mask_rate: float = _opt(0.4, "share of an item's keywords hidden from the input")
    l1: float | None = _opt(
        None,
        "penalty on the sum of an item's activations (sparsity); unset: the overlap gate "
        f"chooses its share of zeros after training, other activations use {DEFAULT_L1:g}",
    )
    target_zeros: float | None = _opt(
        None,
        "share of zero activations the overlap gate (or a targeted gate) is held to in "
        "training, by a multiplier in place of the L1 term; unset: chosen after training "
        f"(overlap), {DEFAULT_TARGET_ZEROS:g} (targeted gates)",
    )
    validation_fraction: float = _opt(0.1, "share of items held out for early stopping")
    random_state: int = _opt(
        0, "seed of the initialisation and the training order", flag="--seed", proto="seed"
    )

    def __post_init__(self) -> None:
        # A list from JSON (a saved model, a job record) becomes the tuple a frozen object keeps.
        object.__setattr__(self, "stop_keywords", tuple(self.stop_keywords))
        self.validate()

    def validate(self) -> None:
        """Raise OptionError naming the first option out of its range."""
        if self.activation not in ALL_ACTIVATIONS:
            choices = ", ".join(ALL_ACTIVATIONS)
            raise OptionError("activation", f"must be one of {choices}, got {self.activation!r}")
        if self.init not in INITS:
            raise OptionError("init", f"must be one of {', '.join(INITS)}, got {self.init!r}")
        if not _is_int(self.n_topics) or self.n_topics < 2:
            raise OptionError("n_topics", f"must be at least 2, got {self.n_topics!r}")
        for name in ("min_df", "max_epochs", "patience", "batch_size"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise OptionError(name, f"must be a positive integer, got {value!r}")
        if self.max_vocabulary is not None and (
            not _is_int(self.max_vocabulary) or self.max_vocabulary < 1
        ):
            raise OptionError("max_vocabulary", f"must be >= 1, got {self.max_vocabulary!r}")
        # Every float is checked finite first: inf and NaN pass `> 0` or fail it silently, and
        # a learning rate of inf trains a model of NaN that would otherwise be served.
        for name in ("learning_rate", "mask_rate", "l1", "target_zeros", "validation_fraction"):
            value = getattr(self, name)
            if value is None and name in ("l1", "target_zeros"):  # unset: see below
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise OptionError(name, f"must be a number, got {value!r}")
            if not math.isfinite(value):
                raise OptionError(name, f"must be a finite number, got {value}")
        if not (
            isinstance(self.max_df, int | float)
            and not isinstance(self.max_df, bool)
            and 0.0 < self.max_df <= 1.0  # NaN fails this too
        ):
            raise OptionError("max_df", f"must be in (0, 1], got {self.max_df!r}")
        if not all(isinstance(k, str) for k in self.stop_keywords):
            raise OptionError("stop_keywords", "must be strings")
        if not 0.0 < self.mask_rate < 1.0:
            raise OptionError("mask_rate", f"must be in (0, 1), got {self.mask_rate}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise OptionError(
                "validation_fraction", f"must be in (0, 1), got {self.validation_fraction}"
            )
        if not 0.0 < self.learning_rate <= MAX_LEARNING_RATE:
            raise OptionError(
                "learning_rate", f"must be in (0, {MAX_LEARNING_RATE}], got {self.learning_rate}"
            )
        if self.l1 is not None and not 0.0 <= self.l1 <= MAX_L1:
            raise OptionError("l1", f"must be in [0, {MAX_L1}], got {self.l1}")
        if self.target_zeros is not None and not 0.0 <= self.target_zeros < 1.0:
            raise OptionError("target_zeros", f"must be in [0, 1), got {self.target_zeros}")

    # -- how sparsity is set ---------------------------------------------------------------------
    # The overlap gate, given neither option, is trained at a share of zeros that keeps recall
    # (held by a multiplier) and then chooses its own, sparser where that costs no recall
    # (`training/sparsity.py`). Given one, it does exactly what that says: `--l1 0.01` is the
    # default of earlier versions.

    @property
    def chooses_sparsity(self) -> bool:
        """Whether training chooses the share of zeros from the validation items."""
        return self.activation in CHOOSING and self.l1 is None and self.target_zeros is None

    @property
    def l1_weight(self) -> float:
        """The L1 weight training applies (targeted and held gates ignore it)."""
        return DEFAULT_L1 if self.l1 is None else self.l1

    @property
    def held_zeros(self) -> float | None:
        """The share of zeros a multiplier holds in training, or None (an L1 term instead)."""
        if self.activation in CHOOSING:
            # an L1 weight first: models saved before these options could be unset carry both,
            # and were trained with the L1 term
            if self.l1 is not None:
                return None
            if self.target_zeros is not None:
                return self.target_zeros
            return CHOICE_TRAINING_ZEROS
        if self.activation.endswith("_target"):
            return DEFAULT_TARGET_ZEROS if self.target_zeros is None else self.target_zeros
        return None

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
