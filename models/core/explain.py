"""Why an item got its topics: exact per-keyword contributions and the gate that decided.

The projection is explainable term by term. A topic's pre-activation is a sum of one term per
keyword plus the topic's bias,

    h_k = b_k + sum_j x_j w_jk          (x_j: the keyword's weight in the item)

and its activation is `prelu(h_k) * gate_k`, where the gate is `clamp(beta_k (J_k - tau_k), 0, 1)`
of the item's overlap J_k with the topic. So an explanation lists, for each active topic, the
keywords with the largest terms `x_j w_jk` (all the terms and the bias add up to h_k), and for
each topic that shares keywords with the item but stayed at zero, the overlap and the threshold
that closed the gate (or the negative pre-activation that the rectifier zeroed). Nothing is
approximated: the numbers are the model's own, and `exact` in the tests means they reproduce
the projection.

One schema online and offline: the gRPC contract's `Explanation` message. `to_dict` writes it as
its JSON mapping with the proto's field names (what the Python client returns, what
`topicproj project --explain` stores per item):

    {"active_topics": [{"topic", "activation", "pre_activation", "bias", "overlap",
                        "threshold", "sharpness", "gate",
                        "keywords": [{"keyword", "contribution"}, ...]}, ...],
     "closed_topics": [...]}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .projector import Projector
from .sparse import SparseBatch


@dataclass
class TopicExplanation:
    topic: int
    activation: float  # the projection's value: prelu(pre_activation) * gate
    pre_activation: float  # h = bias + the sum of every keyword's contribution
    bias: float
    overlap: float  # J, the soft Jaccard of the item and the topic
    threshold: float  # tau: the gate is closed while J <= tau
    sharpness: float  # beta: the gate is fully open from J = tau + 1 / beta
    gate: float  # clamp(beta (J - tau), 0, 1)
    keywords: list[tuple[str, float]] = field(default_factory=list)  # largest terms first

    def to_dict(self) -> dict[str, Any]:
        """As the proto's `TopicExplanation`, field names as in the proto."""
        return {
            "topic": self.topic,
            "activation": self.activation,
            "pre_activation": self.pre_activation,
            "bias": self.bias,
            "overlap": self.overlap,
            "threshold": self.threshold,
            "sharpness": self.sharpness,
            "gate": self.gate,
            "keywords": [{"keyword": k, "contribution": c} for k, c in self.keywords],
        }

    @property
    def closed_by(self) -> str:
        """Why a silent topic is silent: "gate" (overlap at or below tau) or "rectifier"."""
        if self.activation != 0:
            return ""
        return "gate" if self.gate == 0 else "rectifier"


@dataclass
class ItemExplanation:
    active: list[TopicExplanation]  # topics with a non-zero activation, strongest first
    closed: list[TopicExplanation]  # topics sharing keywords with the item that stayed at zero

    def to_dict(self) -> dict[str, Any]:
        """As the proto's `Explanation` in its JSON mapping, field names as in the proto."""
        return {
            "active_topics": [t.to_dict() for t in self.active],
            "closed_topics": [t.to_dict() for t in self.closed],
        }


@torch.no_grad()
def explain_batch(
    projector: Projector,
    batch: SparseBatch,
    keywords: Sequence[str],
    top_keywords: int = 5,
) -> list[ItemExplanation]:
    """Explanations of every item of `batch` (`keywords`: the vocabulary, id -> keyword)."""
    if projector.activation.form != "gate":
        raise ValueError(
            f"explanations need the gate form; {projector.activation.name!r} is a research form"
        )
    device = projector.keyword_topics.device
    h, overlap = projector.pre_activation(*batch.torch_inputs(device))  # (items, topics) each
    tau, beta = projector.activation.tau_beta()
    gate = (beta * (overlap - tau)).clamp(0.0, 1.0)
    slope = projector.activation.slope
    y = torch.where(h >= 0, h, slope * h) * gate
    W = projector.keyword_topics.detach().cpu().numpy()  # (keywords, topics)
    bias = projector.bias.detach().cpu().numpy()
    h, overlap, gate, y = (t.cpu().numpy() for t in (h, overlap, gate, y))
    tau, beta = tau.cpu().numpy(), beta.cpu().numpy()
    out = []
    for i in range(len(batch)):
        a, b = batch.indptr[i], batch.indptr[i + 1]
        ids, weights = batch.indices[a:b], batch.weights[a:b]
        terms = weights[:, None] * W[ids]  # (item's keywords, topics): each keyword's term
        shared = (terms > 0).any(axis=0)  # topics the item shares a keyword with

        # One sort for every topic of the item: its keywords by term, largest first.
        ranked = np.argsort(-terms, axis=0, kind="stable")[:top_keywords]  # (top, topics)

        def explain(
            k: int,
            i: int = i,
            ids: np.ndarray = ids,
            terms: np.ndarray = terms,
            ranked: np.ndarray = ranked,
        ) -> TopicExplanation:
            order = ranked[:, k]
            return TopicExplanation(
                topic=k,
                activation=float(y[i, k]),
                pre_activation=float(h[i, k]),
                bias=float(bias[k]),
                overlap=float(overlap[i, k]),
                threshold=float(tau[k]),
                sharpness=float(beta[k]),
                gate=float(gate[i, k]),
                keywords=[(keywords[ids[j]], float(terms[j, k])) for j in order],
            )

        by_value = np.argsort(-y[i], kind="stable")
        active = by_value[y[i, by_value] != 0].tolist()
        closed = np.flatnonzero(shared & (y[i] == 0)).tolist()
        out.append(ItemExplanation([explain(k) for k in active], [explain(k) for k in closed]))
    return out
