"""`TrainResult`: what a fit recorded, saved with the model and read back by `load`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TrainResult:
    epochs: int
    best_epoch: int  # the epoch whose weights the model keeps (lowest validation loss)
    best_validation_loss: float
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    # How the share of zeros was set when training chose it (`training/sparsity.py`): the
    # levels tried, each one's validation recall@10, and the one kept. None otherwise, and in
    # models saved before the choice existed.
    sparsity: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
