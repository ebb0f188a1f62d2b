"""Candidate forms of the overlap-aware activation, measured against the gate and kept so that
the comparison can be rerun (`topicproj evaluate --activations overlap_sigmoid,...`):

    overlap_sigmoid  prelu(h) * sigmoid(beta (J - tau))        smooth, but never exactly zero
    overlap_power    relu(h) * J^gamma (gamma = beta)           zero only where J = 0
    overlap_shift    relu(h - tau (1 - J)) * [J > 0]            a threshold on h that J lowers

Issue 16 (the gate must win at equal sparsity and transfer to large catalogs) added four, each
the gate relu(h) * clamp(beta (O - tau), 0, 1) with another overlap O or another threshold:

    overlap_coverage  O = C = x.m / |x|^2                   the share of the item the topic covers
    overlap_capped    O = x.m / (|x|^2 + min(|m|^2, CAP) - x.m)
                                                            Tanimoto, the topic counted as at most
                                                            CAP keywords
    overlap_hard      O = J, a step gate [beta (J - tau) > 1/2] forward, the ramp's gradient
                      backward (straight-through)
    overlap_quantile  O = J, tau_k not learned: in training it follows (moving average) the
                      QUANTILE quantile of J_k over the batch items with h_k > 0, so the gate
                      shuts about that share of the items a ReLU would fire on, whatever the
                      catalog's size (a sparsity target instead of an L1 weight)

For 0/1 items Tanimoto barely separates one stray keyword among many from a short true item when
the topic's keyword set is large (|m|^2 dominates both denominators); coverage and the capped
Tanimoto do not have that term, or bound it. With tau + 1/beta <= 0 each of the four is relu(h)
exactly, as the gate is (tests/lab/test_candidates.py).

The equal-sparsity study added *targeted* gates, whose sparsity is a share of zeros held by
a constraint rather than the outcome of an L1 weight:

    overlap_target           the gate itself (Tanimoto)
    overlap_coverage_target  the gate on coverage, as overlap_coverage
    overlap_joint_target     the gate times a second ramp on h, clamp(beta_h (h - theta_k), 0, 1):
                             a learned threshold on the magnitude too, so that pruning a ReLU
                             after training is one of its settings

In training each holds the share of zero activations at or above `target_zeros` (a training
option) with a Lagrange multiplier lambda on the share of open gates, raised by dual ascent while
the batch has too few zeros and lowered (never below 0) once it has enough. That term replaces
the L1 penalty: L1 can be paid by shrinking W and growing the decoder (J and the gate do not
change when W is scaled, h does), so the sparsity an L1 weight buys drifts with the number of
steps, and so with the catalog's size. The open share is scale-free, and h is left to the
likelihood alone. The multiplier is a buffer (saved with the model; serving never moves it).

Serving never imports this module: a server knows only the core's forms.
"""

from __future__ import annotations

import torch

from topicproj.models.core.activation import ActivationSpec, OverlapActivation, register_form
from topicproj.models.core.options import DEFAULT_TARGET_ZEROS

_EPS = 1e-12
CAP = 4.0  # overlap_capped: a topic counts as at most this many keywords (an item has ~5-8)
QUANTILE = 0.5  # overlap_quantile: the share of a topic's firing items its gate shuts
MOMENTUM = 0.9  # overlap_quantile: weight of the old threshold in the moving average
# Targeted gates: the multiplier's step per batch, per unit of shortfall in the share of zeros.
# At 0.05 it reaches the ~1-3 a binding target needs within a few hundred steps (one to a few
# epochs on TMDB), without swinging the share of zeros from batch to batch.
DUAL_STEP = 0.05

_GATE_PARAMS = frozenset({"threshold", "log_sharpness"})
CANDIDATE_SPECS = {
    "overlap_sigmoid": ActivationSpec("sigmoid", 0.0, 0.0, 50.0, _GATE_PARAMS, 0.0),
    "overlap_power": ActivationSpec("power", 0.0, 0.0, 0.5, frozenset({"log_sharpness"}), 0.0),
    "overlap_shift": ActivationSpec("shift", 0.0, 0.0, 1.0, frozenset({"threshold"}), 0.0),
    # Coverage lives on [0, 1] with short true items near 1 and a stray keyword near 1/|x|, so
    # it starts with the gate shut below 0.1 and open from 0.2.
    "overlap_coverage": ActivationSpec("coverage", 0.0, 0.1, 10.0, _GATE_PARAMS, 0.0),
    "overlap_capped": ActivationSpec("capped", 0.0, 0.0, 20.0, _GATE_PARAMS, 0.0),
    "overlap_hard": ActivationSpec("hard", 0.0, 0.0, 50.0, _GATE_PARAMS, 0.0),
    "overlap_quantile": ActivationSpec(
        "quantile", 0.0, 0.0, 50.0, frozenset({"log_sharpness"}), 0.0
    ),
    "overlap_target": ActivationSpec("gate", 0.0, 0.0, 50.0, _GATE_PARAMS, 0.0),
    "overlap_coverage_target": ActivationSpec("coverage", 0.0, 0.1, 10.0, _GATE_PARAMS, 0.0),
    "overlap_joint_target": ActivationSpec("joint", 0.0, 0.0, 50.0, _GATE_PARAMS, 0.0),
}


def coverage(xm: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
    """x.m / |x|^2, (batch, topics): for a 0/1 item the membership mass of its keywords in the
    topic over its keyword count, in [0, 1] (clamped for weighted items)."""
    return (xm / xx[:, None].clamp_min(_EPS)).clamp(0.0, 1.0)


def capped_tanimoto(
    xm: torch.Tensor, xx: torch.Tensor, norm2: torch.Tensor, cap: float = CAP
) -> torch.Tensor:
    """Tanimoto with the topic's |m|^2 bounded by `cap`, (batch, topics), in [0, 1]."""
    denom = (xx[:, None] + norm2.clamp(max=cap)[None, :] - xm).clamp_min(_EPS)
    return (xm / denom).clamp(0.0, 1.0)


class CandidateActivation(OverlapActivation):
    """The same parameters as the gate (slope, tau, beta), another way of combining them."""

    def __init__(self, n_topics: int, name: str = "overlap") -> None:
        super().__init__(n_topics, name)
        # The projector computes O with `overlap_from` where an activation has one; bound
        # methods, so that a model with a candidate form still pickles.
        if self.form == "coverage":
            self.overlap_from = self._coverage
        elif self.form == "capped":
            self.overlap_from = self._capped
        if self.form == "joint":
            # a second ramp on h itself, theta_k <= h <= theta_k + 1/beta_h: with beta = 0 on
            # the overlap this is a learned-threshold ReLU (JumpReLU-like), the trained
            # counterpart of pruning a ReLU after training
            self.magnitude_threshold = torch.nn.Parameter(torch.zeros(n_topics))
            self.log_magnitude_sharpness = torch.nn.Parameter(torch.full((n_topics,), 3.0))
        self.targeted = name.endswith("_target")
        if self.targeted:
            self.register_buffer("multiplier", torch.zeros(()))
            # the training loop sets each model's own from its options
            self.target_zeros = DEFAULT_TARGET_ZEROS
            self.training_penalty: torch.Tensor | None = None

    def _coverage(self, xm: torch.Tensor, xx: torch.Tensor, norm2: torch.Tensor) -> torch.Tensor:
        return coverage(xm, xx)

    def _capped(self, xm: torch.Tensor, xx: torch.Tensor, norm2: torch.Tensor) -> torch.Tensor:
        return capped_tanimoto(xm, xx, norm2)

    def forward(
        self, h: torch.Tensor, overlap: torch.Tensor, *, consume: bool = False
    ) -> torch.Tensor:
        # h, overlap: (batch, topics) -> (batch, topics); out of place, so `consume` is moot
        if self.form == "gate" and not (self.training and torch.is_grad_enabled()):
            # served, a targeted Tanimoto gate is the default gate: take its in-place path, so
            # that it costs what the default costs
            return super().forward(h, overlap, consume=consume)
        if self.form == "quantile" and self.training and torch.is_grad_enabled():
            self._follow_quantile(h, overlap)
        tau, beta = self.tau_beta()
        rectified = torch.where(h >= 0, h, self.slope * h)
        if self.targeted:
            gate = (beta * (overlap - tau)).clamp(0.0, 1.0)
            if self.form == "joint":
                theta = self.magnitude_threshold.clamp(min=0.0)
                beta_h = self.log_magnitude_sharpness.exp()
                gate = gate * (beta_h * (h - theta)).clamp(0.0, 1.0)
            y = rectified * gate
            if self.training and torch.is_grad_enabled():
                self._hold_target(h, gate, y)
            return y
        if self.form in ("coverage", "capped", "quantile"):
            return rectified * (beta * (overlap - tau)).clamp(0.0, 1.0)
        if self.form == "hard":
            ramp = (beta * (overlap - tau)).clamp(0.0, 1.0)
            step = (ramp > 0.5).to(ramp.dtype)
            return rectified * (ramp + (step - ramp).detach())  # the value of step
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

    def _hold_target(self, h: torch.Tensor, gate: torch.Tensor, y: torch.Tensor) -> None:
        """One dual-ascent step on the multiplier, then this batch's penalty: multiplier times
        the mean gate value over the (item, topic) pairs with h > 0. h, gate, y: (batch,
        topics)."""
        with torch.no_grad():
            zeros = (y <= 0).float().mean()
            self.multiplier.add_(DUAL_STEP * (self.target_zeros - zeros)).clamp_(min=0.0)
        open_share = (gate * (h > 0)).mean()
        self.training_penalty = self.multiplier * open_share

    @torch.no_grad()
    def _follow_quantile(self, h: torch.Tensor, overlap: torch.Tensor) -> None:
        """tau_k <- MOMENTUM tau_k + (1 - MOMENTUM) q_k, q_k the QUANTILE quantile of J_k over
        the batch items with h_k > 0 (topics with none keep their tau)."""
        J = torch.where(h > 0, overlap, torch.full_like(overlap, float("nan")))  # (batch, topics)
        q = torch.nanquantile(J.float(), QUANTILE, dim=0).to(self.threshold.dtype)  # (topics,)
        seen = ~torch.isnan(q)
        moved = MOMENTUM * self.threshold + (1 - MOMENTUM) * torch.nan_to_num(q)
        self.threshold.copy_(torch.where(seen, moved, self.threshold))


# The lab's forms become buildable (`make_activation`, `TopicModel.load`) once this module is
# imported; the lab's package imports it, so any use of the lab registers them.
for _name, _spec in CANDIDATE_SPECS.items():
    register_form(_name, _spec, CandidateActivation)
