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

Other forms were measured against it (`benchmarks/RESULTS.md`). They live in the lab, which
registers them here with `register_form` when it is imported; the core never imports the lab,
so a process that has not imported it (a server) knows only the forms above.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .options import ACTIVATIONS, ALL_ACTIVATIONS, CANDIDATE_FORMS, CHOOSING

__all__ = [
    "ACTIVATIONS",
    "ALL_ACTIVATIONS",
    "CANDIDATE_FORMS",
    "OverlapActivation",
    "make_activation",
    "register_form",
]

# The multiplier's step per batch, per unit of shortfall in the share of zeros (the targeted
# gates' DUAL_STEP): it reaches the ~1-3 a binding target needs within a few hundred steps.
HOLD_STEP = 0.05


@dataclass(frozen=True)
class ActivationSpec:
    """The form, the initial per-topic parameters, and which of them learn."""

    form: str  # "gate" here; the lab's candidates have forms of their own
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
            # the same gate; training chooses its share of zeros (training/sparsity.py)
            "overlap_auto": cls("gate", 0.0, 0.0, 50.0, gate_params, 0.0),
        }
        if name in _REGISTERED:
            return _REGISTERED[name][0]
        if name not in specs:
            raise ValueError(_unknown(name))
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
        # Training only (set by the loop, never saved): hold the share of zero activations at
        # `hold_zeros` with a multiplier on the share of open gates instead of an L1 term. The
        # open share does not change when W is scaled, so the decoder cannot absorb it.
        self.hold_zeros: float | None = None
        self.register_buffer("hold_multiplier", torch.zeros(()), persistent=False)
        self.hold_penalty: torch.Tensor | None = None

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

    def forward(
        self, h: torch.Tensor, overlap: torch.Tensor, *, consume: bool = False
    ) -> torch.Tensor:
        """prelu(h) * gate(J) for h and J of shape (batch, topics).

        With `consume` (the projector's own call) the result is written into the inputs'
        memory, which saves two passes over (batch, topics); autograd accepts each of these
        in-place steps, and the values and gradients equal the out-of-place formula's (a test
        checks). Without it the inputs are copied first and left as they were.
        """
        if not consume:
            h, overlap = h.clone(), overlap.clone()
        tau, beta = self.tau_beta()
        gate = overlap.sub_(tau).mul_(beta).clamp_(0.0, 1.0)  # (batch, topics)
        # With a fixed slope of 0 (relu, and the default gate) a clamp in place is the whole
        # rectifier; otherwise prelu's own kernel (h >= 0 ? h : a h). torch.where needed a
        # mask, a product and a select: 5 ms of 22 for 32,768 items x 50 topics.
        rectified = h.clamp_(min=0.0) if self.zero_slope else F.prelu(h, self.slope)
        if self.hold_zeros is not None and self.training and torch.is_grad_enabled():
            open_share = (gate * (rectified > 0)).mean()
            y = rectified.mul_(gate)
            with torch.no_grad():  # one dual-ascent step: up while too few zeros, never < 0
                zeros = (y <= 0).float().mean()
                self.hold_multiplier.add_(HOLD_STEP * (self.hold_zeros - zeros)).clamp_(min=0.0)
            self.hold_penalty = self.hold_multiplier * open_share
            return y
        return rectified.mul_(gate)

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


# The lab's forms, by name: their spec and the module that builds them. Filled by the lab on
# import (`register_form`), so that the dependency points one way: the lab to the core.
_REGISTERED: dict[str, tuple[ActivationSpec, Callable[[int, str], OverlapActivation]]] = {}


def register_form(
    name: str, spec: ActivationSpec, build: Callable[[int, str], OverlapActivation]
) -> None:
    """Make the activation `name` (one of CANDIDATE_FORMS) buildable in this process."""
    if name not in CANDIDATE_FORMS:
        raise ValueError(f"{name!r} is not a candidate form; add it to CANDIDATE_FORMS first")
    _REGISTERED[name] = (spec, build)


def _unknown(name: str) -> str:
    if name in CANDIDATE_FORMS:
        return (
            f"activation {name!r} is a research form: it is built by the lab (lab/ in a "
            "checkout of the repository), which this process has not loaded; the served forms "
            f"are {', '.join(ACTIVATIONS + CHOOSING)}"
        )
    return f"unknown activation {name!r}; expected one of {', '.join(ALL_ACTIVATIONS)}"


def make_activation(n_topics: int, name: str) -> OverlapActivation:
    """The activation called `name`: a served form, or a research form the lab registered."""
    if name in _REGISTERED:
        return _REGISTERED[name][1](n_topics, name)
    if name in CANDIDATE_FORMS:
        raise ValueError(_unknown(name))
    return OverlapActivation(n_topics, name)
