"""Question 4 of the activation study: what the overlap activation learned.

The per-topic gate parameters of every overlap model, the topics that demand the most and the
least overlap, and (h, J) samples of test items for the activation-surface figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from lab.evaluation import EvaluationData, Fitted


@torch.no_grad()
def learned_parameters(
    fitted: dict[tuple[int, str, int], Fitted],
    data: EvaluationData,
    n_topics: int,
    n_surfaces: int = 3,
    n_points: int = 400,
) -> dict[str, Any]:
    """Per-topic parameters of every overlap model at `n_topics`, and for the first seed's model
    the topics that demand the most and the least overlap, with (h, J) of the test items."""
    from topicproj.models.core.sparse import SparseBatch

    overlap = sorted((k for k in fitted if k[0] == n_topics and k[1] == "overlap"), key=str)
    prelu = sorted((k for k in fitted if k[0] == n_topics and k[1] == "prelu"), key=str)
    if not overlap:
        return {}
    params = [fitted[k].model.projector_.activation.parameters_table() for k in overlap]
    out: dict[str, Any] = {
        "topics": n_topics,
        "seeds": [k[2] for k in overlap],
        "threshold": [v for p in params for v in p["threshold"]],
        "sharpness": [v for p in params for v in p["sharpness"]],
        "bias": [v for k in overlap for v in fitted[k].model.projector_.bias.tolist()],
        "prelu_slope": [
            v for k in prelu for v in fitted[k].model.projector_.activation.slope.tolist()
        ],
    }
    model = fitted[overlap[0]].model
    remap = np.array([model.vocabulary_.id(k) for k in data.vocabulary.keywords])
    X = data.X_test.copy()
    X.indices = remap[X.indices]
    h, J = model.projector_.pre_activation(*SparseBatch.from_csr(X).torch_inputs("cpu"))
    y = model.projector_.activation(h, J)
    h, J, y = h.numpy(), J.numpy(), y.numpy()
    tau, beta = np.array(params[0]["threshold"]), np.array(params[0]["sharpness"])
    full_at = tau + 1.0 / beta  # the overlap at which the gate is fully open
    positive = h > 0
    # Share of the items a ReLU would switch on that the gate holds at zero.
    vetoed = ((positive & (y <= 0)).sum(axis=0) / np.maximum(positive.sum(axis=0), 1)).tolist()
    words = model.top_keywords(6)
    table = [
        {
            "topic": int(k),
            "threshold": float(tau[k]),
            "sharpness": float(beta[k]),
            "full_at": float(full_at[k]),
            "median_overlap": float(np.median(J[positive[:, k], k])) if positive[:, k].any() else 0,
            "vetoed": vetoed[k],
            "active": float((y[:, k] > 0).mean()),
            "keywords": words[k],
        }
        for k in np.argsort(-tau, kind="stable")
    ]
    order = np.argsort(-tau, kind="stable")
    picks = list(dict.fromkeys([*order[: n_surfaces - 1].tolist(), int(order[-1])]))
    rng = np.random.default_rng(0)
    surfaces = []
    for k in picks:
        rows = rng.choice(len(h), size=min(n_points, len(h)), replace=False)
        surfaces.append(
            {
                "topic": k,
                "slope": float(params[0]["slope"][k]),
                "threshold": float(tau[k]),
                "sharpness": float(beta[k]),
                "keywords": words[k][:4],
                "h": h[rows, k].round(5).tolist(),
                "overlap": J[rows, k].round(5).tolist(),
            }
        )
    out |= {"seed": overlap[0][2], "table": table, "surfaces": surfaces}
    return out
