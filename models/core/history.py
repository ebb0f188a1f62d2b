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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
