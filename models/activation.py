"""The learnable overlap-aware activation.

For an item x and topic k the projector computes two numbers from the same dot product:

    h_k = x . w_k + b_k                                   the rectified-dot-product part
    J_k = x . m_k / (|x|^2 + |m_k|^2 - x . m_k)           Tanimoto overlap, in [0, 1]

where m_k = w_k / max(w_k) is the topic's keyword membership. For 0/1 vectors J_k is the Jaccard
index of the two keyword sets. The default activation ("overlap", the gate form) is

    y_k = prelu(h_k; a_k) * clamp(beta_k * (J_k - tau_k), 0, 1)

with per-topic slope a_k, overlap threshold tau_k >= 0 and gate sharpness beta_k. The gate is
exactly zero while the overlap does not exceed tau_k, and exactly one once it exceeds
tau_k + 1/beta_k. Fixed settings of the same module give the baselines, on the same code path:

    relu        a = 0,    tau = -1, beta = 1   (the gate is 1 for every J in [0, 1])
    leaky_relu  a = 0.01, tau = -1, beta = 1
    prelu       a learnable (from 0.25), gate as above

Three other forms were measured against it (`benchmarks/RESULTS.md`) and are kept, under their
own names, so that the comparison can be rerun:

    overlap_sigmoid  prelu(h) * sigmoid(beta (J - tau))        smooth, but never exactly zero
    overlap_power    relu(h) * J^gamma (gamma = beta)           zero only where J = 0
    overlap_shift    relu(h - tau (1 - J)) * [J > 0]            a threshold on h that J lowers
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

ACTIVATIONS = ("relu", "leaky_relu", "prelu", "overlap")
CANDIDATE_FORMS = ("overlap_sigmoid", "overlap_power", "overlap_shift")
ALL_ACTIVATIONS = ACTIVATIONS + CANDIDATE_FORMS


@dataclass(frozen=True)
class ActivationSpec:
    """The form, the initial per-topic parameters, and which of them learn."""

    form: str  # "gate", "sigmoid", "power" or "shift"
    slope: float
    threshold: float
    sharpness: float
    learn: frozenset[str]
    min_threshold: float  # tau is kept >= this; >= 0 means "no overlap, no firing"

    @classmethod
    def named(cls, name: str) -> ActivationSpec:
        gate_params = frozenset({"threshold", "log_sharpness"})
        specs = {
            "relu": cls("gate", 0.0, -1.0, 1.0, frozenset(), -1.0),
            "leaky_relu": cls("gate", 0.01, -1.0, 1.0, frozenset(), -1.0),
            "prelu": cls("gate", 0.25, -1.0, 1.0, frozenset({"slope"}), -1.0),
            # beta starts large, so at first the gate passes nearly every overlapping item;
            # training (pushed by the L1 penalty) then raises tau topic by topic.
            "overlap": cls("gate", 0.0, 0.0, 50.0, gate_params, 0.0),
            "overlap_sigmoid": cls("sigmoid", 0.0, 0.0, 50.0, gate_params, 0.0),
            "overlap_power": cls("power", 0.0, 0.0, 0.5, frozenset({"log_sharpness"}), 0.0),
            "overlap_shift": cls("shift", 0.0, 0.0, 1.0, frozenset({"threshold"}), 0.0),
        }
        if name not in specs:
            raise ValueError(
                f"unknown activation {name!r}; expected one of {', '.join(ALL_ACTIVATIONS)}"
            )
        return specs[name]


class OverlapActivation(nn.Module):
    """y = prelu(h; a) * clamp(beta (J - tau), 0, 1), with per-topic a, tau, beta.

    Parameters that a setting keeps fixed are buffers: saved with the model, never trained.
    """

    def __init__(self, n_topics: int, name: str = "overlap") -> None:
        super().__init__()
        spec = ActivationSpec.named(name)
        self.name = name
        self.form = spec.form
        self.n_topics = n_topics
        initial = {
            "slope": spec.slope,
            "threshold": spec.threshold,
            # beta > 0 is kept as log(beta): log(1) = 0 exactly, so the baselines stay exact.
            "log_sharpness": math.log(spec.sharpness),
        }
        for attr, value in initial.items():
            t = torch.full((n_topics,), float(value))
            if attr in spec.learn:
                setattr(self, attr, nn.Parameter(t))
            else:
                self.register_buffer(attr, t)
        self.register_buffer("min_threshold", torch.tensor(float(spec.min_threshold)))
        # Known without reading the tensor (which on a GPU would mean a synchronisation).
        self.zero_slope = "slope" not in spec.learn and spec.slope == 0.0

    @torch.no_grad()
    def constrain_(self) -> None:
        """Project tau back onto tau >= min_threshold after an optimiser step.

        Clamping inside `forward` alone would leave a tau below the bound with no gradient,
        stuck there for good; projecting the parameter keeps it where gradients reach it.
        """
        self.threshold.clamp_(min=float(self.min_threshold))

    def tau_beta(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The effective threshold and sharpness, each (topics,)."""
        return torch.maximum(self.threshold, self.min_threshold), self.log_sharpness.exp()

    def gate(self, overlap: torch.Tensor) -> torch.Tensor:
        """clamp(beta (J - tau), 0, 1) for overlaps J of shape (batch, topics)."""
        tau, beta = self.tau_beta()
        return (beta * (overlap - tau)).clamp(0.0, 1.0)

    def forward(self, h: torch.Tensor, overlap: torch.Tensor) -> torch.Tensor:
        # h, overlap: (batch, topics) -> (batch, topics)
        rectified = torch.where(h >= 0, h, self.slope * h)
        if self.form == "gate":
            return rectified * self.gate(overlap)
        return self._candidate(h, rectified, overlap)

    def _candidate(
        self, h: torch.Tensor, rectified: torch.Tensor, overlap: torch.Tensor
    ) -> torch.Tensor:
        tau = torch.maximum(self.threshold, self.min_threshold)
        beta = self.log_sharpness.exp()
        if self.form == "sigmoid":
            return rectified * torch.sigmoid(beta * (overlap - tau))
        if self.form == "power":
            # J^gamma with a gradient that stays finite where J = 0 (log 0 would be -inf).
            positive = overlap > 0
            safe = torch.where(positive, overlap, torch.ones_like(overlap))
            return torch.where(positive, rectified * safe.pow(beta), torch.zeros_like(overlap))
        if self.form == "shift":
            return torch.relu(h - tau * (1 - overlap)) * (overlap > 0)
        raise ValueError(f"unknown activation form {self.form!r}")

    @torch.no_grad()
    def parameters_table(self) -> dict[str, list[float]]:
        """The per-topic parameters in readable form (beta, not log beta)."""
        return {
            "slope": self.slope.tolist(),
            "threshold": torch.maximum(self.threshold, self.min_threshold).tolist(),
            "sharpness": self.log_sharpness.exp().tolist(),
        }

    def extra_repr(self) -> str:
        return f"name={self.name!r}, form={self.form!r}, n_topics={self.n_topics}"
