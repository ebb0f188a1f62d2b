"""Pruning a model's activations after training to a share of zeros: the baseline every gate is
compared with at equal sparsity (the study's part 1
and `lab.equal_sparsity`)."""

from __future__ import annotations

import numpy as np


def prune(Y: np.ndarray, Y_train: np.ndarray, level: float) -> np.ndarray:
    """Y with every activation at or below t set to zero, t the `level` quantile of the same
    model's activations on the training items (so about that share of them is zero; no label
    or test item plays a part in choosing t)."""
    t = max(float(np.quantile(Y_train, level)), 0.0)  # negative outputs are pruned too
    return np.where(Y > t, Y, 0.0)
