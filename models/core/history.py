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

    def active_topics(self, n_topics: int) -> float | None:
        """Mean active (non-zero) topics per validation item, whole items in: at the chosen
        level where training chose one, else at the best epoch."""
        if self.sparsity is not None:
            return float(self.sparsity["chosen_level"]["active_topics"])
        if not self.history or "zero_fraction" not in self.history[0]:
            return None
        entry = self.history[max(self.best_epoch, 1) - 1]
        return (1.0 - float(entry["zero_fraction"])) * n_topics

    def sparsity_lines(self, n_topics: int) -> list[str]:
        """How the share of zeros was set, for people: one line, and the validation curve
        where training chose it."""
        active = self.active_topics(n_topics)
        per_item = (
            f"{active:.1f} of {n_topics} topics active per item on average"
            if active is not None
            else "active topics per item not recorded"
        )
        if self.sparsity is None:
            return [f"sparsity: set by the options; {per_item}"]
        c = self.sparsity["chosen_level"]
        best = max(self.sparsity["levels"], key=lambda lv: lv["recall_at_10"])
        lines = [
            f"sparsity: chosen on {self.sparsity['validation_items']} validation items: "
            f"{c['zeros']:.2f} zeros, {per_item}; validation recall@10 {c['recall_at_10']:.3f} "
            f"(best {best['recall_at_10']:.3f} at {best['zeros']:.2f} zeros; kept: the "
            f"{self.sparsity['rule']})",
        ]
        # models of the first version of the choice measured the validation items only
        seen = "train_recall_at_10" in self.sparsity["levels"][0]
        lines.append(
            "  level  zeros  active  recall@10  ± se" + ("  train recall@10  ± se" if seen else "")
        )
        for i, lv in enumerate(self.sparsity["levels"]):
            mark = "  <- chosen" if i == self.sparsity["chosen"] else ""
            train = f"  {lv['train_recall_at_10']:>15.3f}  {lv['train_se']:.3f}" if seen else ""
            lines.append(
                f"  {lv['quantile']:>5.1f}  {lv['zeros']:>5.2f}  {lv['active_topics']:>6.1f}  "
                f"{lv['recall_at_10']:>9.3f}  {lv['se']:.3f}{train}{mark}"
            )
        return lines
