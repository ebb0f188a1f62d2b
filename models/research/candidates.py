"""Candidate forms of the overlap-aware activation, measured against the gate and kept so that
the comparison can be rerun (`topicproj evaluate --activations overlap_sigmoid,...`):

    overlap_sigmoid  prelu(h) * sigmoid(beta (J - tau))        smooth, but never exactly zero
    overlap_power    relu(h) * J^gamma (gamma = beta)           zero only where J = 0
    overlap_shift    relu(h - tau (1 - J)) * [J > 0]            a threshold on h that J lowers

Serving never imports this module unless a model names one of these forms.
"""

from __future__ import annotations

import torch

from models.core.activation import ActivationSpec, OverlapActivation

_GATE_PARAMS = frozenset({"threshold", "log_sharpness"})
CANDIDATE_SPECS = {
    "overlap_sigmoid": ActivationSpec("sigmoid", 0.0, 0.0, 50.0, _GATE_PARAMS, 0.0),
    "overlap_power": ActivationSpec("power", 0.0, 0.0, 0.5, frozenset({"log_sharpness"}), 0.0),
    "overlap_shift": ActivationSpec("shift", 0.0, 0.0, 1.0, frozenset({"threshold"}), 0.0),
}


class CandidateActivation(OverlapActivation):
    """The same parameters as the gate (slope, tau, beta), another way of combining them."""

    def forward(
        self, h: torch.Tensor, overlap: torch.Tensor, *, consume: bool = False
    ) -> torch.Tensor:
        # h, overlap: (batch, topics) -> (batch, topics); out of place, so `consume` is moot
        tau, beta = self.tau_beta()
        rectified = torch.where(h >= 0, h, self.slope * h)
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
