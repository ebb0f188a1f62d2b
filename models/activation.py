"""The learnable overlap-aware activation.

For an item x and topic k the projector computes two numbers from the same dot product:

    h_k = x . w_k + b_k                                   the rectified-dot-product part
    J_k = x . m_k / (|x|^2 + |m_k|^2 - x . m_k)           Tanimoto overlap, in [0, 1]

where m_k = w_k / max(w_k) is the topic's keyword membership. For 0/1 vectors J_k is the Jaccard
index of the two keyword sets. The activation is

    y_k = prelu(h_k; a_k) * clamp(beta_k * (J_k - tau_k), 0, 1)

with per-topic slope a_k, overlap threshold tau_k and gate sharpness beta_k. The gate is exactly
zero when the overlap does not exceed tau_k and exactly one once it exceeds tau_k + 1/beta_k.

Fixed settings of the same module give the baselines, on the same code path:

    relu        a = 0,    tau = -1, beta = 1   (the gate is 1 for every J in [0, 1])
    leaky_relu  a = 0.01, tau = -1, beta = 1
    prelu       a learnable (from 0.25), gate as above
    overlap     a = 0, tau >= 0 and beta learnable: a topic with no shared keyword never fires

Why this form, and not prelu(h) * sigmoid(beta (J - tau)) or prelu(h) * J^gamma: the sigmoid never
gives an exact zero, and J^gamma only scales, so neither makes the projection sparser where the
overlap is low. `docs/activation.md` and `benchmarks/RESULTS.md` hold the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

ACTIVATIONS = ("relu", "leaky_relu", "prelu", "overlap")


@dataclass(frozen=True)
class ActivationSpec:
    """Initial values of the per-topic parameters and which of them learn."""

    slope: float
    threshold: float
    sharpness: float
    learn_slope: bool
    learn_gate: bool
    min_threshold: float  # tau is clamped to at least this; >= 0 means "no overlap, no firing"

    @classmethod
    def named(cls, name: str) -> ActivationSpec:
        specs = {
            "relu": cls(0.0, -1.0, 1.0, False, False, -1.0),
            "leaky_relu": cls(0.01, -1.0, 1.0, False, False, -1.0),
            "prelu": cls(0.25, -1.0, 1.0, True, False, -1.0),
            # beta starts large so that the gate passes nearly every overlapping item at first;
            # training (and the L1 penalty) then raises tau topic by topic.
            "overlap": cls(0.0, 0.0, 50.0, False, True, 0.0),
        }
        if name not in specs:
            raise ValueError(f"unknown activation {name!r}; expected one of {', '.join(specs)}")
        return specs[name]


class OverlapActivation(nn.Module):
    """y = prelu(h; a) * clamp(beta (J - tau), 0, 1), with per-topic a, tau, beta.

    Parameters that a setting keeps fixed are buffers, so they are saved with the model but
    never trained.
    """

    def __init__(self, n_topics: int, name: str = "overlap") -> None:
        super().__init__()
        spec = ActivationSpec.named(name)
        self.name = name
        self.n_topics = n_topics

        def per_topic(value: float, learn: bool, attr: str) -> None:
            t = torch.full((n_topics,), float(value))
            if learn:
                setattr(self, attr, nn.Parameter(t))
            else:
                self.register_buffer(attr, t)

        per_topic(spec.slope, spec.learn_slope, "slope")
        per_topic(spec.threshold, spec.learn_gate, "threshold")
        # beta > 0 is kept as log(beta): log(1) = 0 exactly, so the baselines stay exact.
        per_topic(torch.log(torch.tensor(spec.sharpness)).item(), spec.learn_gate, "log_sharpness")
        self.register_buffer("min_threshold", torch.tensor(float(spec.min_threshold)))

    @property
    def gated(self) -> bool:
        return bool(self.min_threshold >= 0)

    @torch.no_grad()
    def constrain_(self) -> None:
        """Project tau back onto tau >= min_threshold after an optimiser step.

        Clamping inside `forward` alone would leave a tau below the bound with no gradient,
        stuck there for good; projecting the parameter keeps it where gradients reach it.
        """
        self.threshold.clamp_(min=float(self.min_threshold))

    def gate(self, overlap: torch.Tensor) -> torch.Tensor:
        """clamp(beta (J - tau), 0, 1) for overlaps J of shape (batch, topics)."""
        tau = torch.maximum(self.threshold, self.min_threshold)  # (topics,)
        beta = self.log_sharpness.exp()  # (topics,)
        return (beta * (overlap - tau)).clamp(0.0, 1.0)

    def forward(self, h: torch.Tensor, overlap: torch.Tensor) -> torch.Tensor:
        # h, overlap: (batch, topics) -> (batch, topics)
        rectified = torch.where(h >= 0, h, self.slope * h)
        return rectified * self.gate(overlap)

    @torch.no_grad()
    def parameters_table(self) -> dict[str, list[float]]:
        """The per-topic parameters in readable form (beta, not log beta)."""
        return {
            "slope": self.slope.tolist(),
            "threshold": torch.maximum(self.threshold, self.min_threshold).tolist(),
            "sharpness": self.log_sharpness.exp().tolist(),
        }

    def extra_repr(self) -> str:
        return f"name={self.name!r}, n_topics={self.n_topics}"
