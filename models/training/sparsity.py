"""The overlap gate's share of zeros, chosen on the training catalog's own validation items.

No single L1 weight or target suits every catalog: on TMDB an L1 weight of 0.01 gives about half
the activations at zero with ReLU's recall, on a catalog of short items it shuts four gates in
five and loses recall. So the default gate is trained densely (held at
`CHOICE_TRAINING_ZEROS` by a multiplier) and then, after early stopping, raises its thresholds
as far as the validation items allow:

1. Levels. For each q in `LEVELS`, topic k's threshold becomes the larger of its own and the
   q-quantile of its overlaps J_k over the (training item, topic k) pairs it switches on. Level
   q so shuts about the share q of each topic's weakest-overlap firings, the weakest first, and
   q = 0 is the trained model itself.
2. Validation recall@10 at each level, as `topicproj evaluate` measures it on test items: each
   validation item with two or more keywords hides one of them, and the decoder ranks it among
   the keywords not shown. `DRAWS` draws, the same for every level; an item's recall is its
   share of draws with the hidden keyword in the top 10.
3. The choice: the sparsest level whose mean recall is within one standard error of the best
   level's, the standard error that of the item-by-item difference from the best (paired: the
   levels share items and draws, so most of the noise cancels).

It costs a few forward passes over the validation items, nothing like an epoch. The levels, their
recall and zeros, and the choice are recorded with the model (`TrainResult.sparsity`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from topicproj.models.core.decoder import KeywordDecoder
from topicproj.models.core.projector import Projector
from topicproj.models.core.sparse import SparseBatch

LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
DRAWS = 8  # hidden keywords drawn per validation item: more draws, a smaller standard error
TOP = 10
FIT_ITEMS = 20_000  # training items the per-topic quantiles are taken over (a sample)
CHUNK = 512  # validation items scored at once: (levels, CHUNK, keywords) floats


@dataclass
class SparsityChoice:
    rule: str
    levels: list[dict[str, float]]  # per level: quantile, zeros, active, recall_at_10, se
    chosen: int  # index into levels
    thresholds_raised: int = 0  # topics whose threshold the choice raised
    validation_items: int = 0
    seconds: float = 0.0  # what choosing took, beside the training it follows
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def level(self) -> dict[str, float]:
        return self.levels[self.chosen]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"chosen_level": self.level}


def _inputs(X: sp.csr_matrix, device: torch.device) -> tuple[torch.Tensor, ...]:
    return SparseBatch.from_csr(sp.csr_matrix(X, dtype=np.float32)).torch_inputs(device)


def _masks(X: sp.csr_matrix, seed: int) -> list[sp.csr_matrix]:
    """DRAWS 0/1 matrices of hidden keywords: one keyword of each item with two or more (as
    `topicproj evaluate` hides one), drawn afresh for each matrix."""
    rng = np.random.default_rng(seed)
    lengths = np.diff(X.indptr)
    n_hide = (lengths >= 2).astype(np.int64)
    rows = np.repeat(np.arange(X.shape[0]), lengths)
    out = []
    for _ in range(DRAWS):
        # rank each keyword within its item by a random key; hide the n_hide lowest
        key = rng.random(X.nnz) + rows  # sorts by item, then randomly within the item
        order = np.argsort(key, kind="stable")
        rank = np.empty(X.nnz, dtype=np.int64)
        rank[order] = np.arange(X.nnz) - np.repeat(X.indptr[:-1], lengths)
        hidden = rank < np.repeat(n_hide, lengths)
        # copies of the index arrays: eliminate_zeros on the mask must not touch X's
        H = sp.csr_matrix(
            (hidden.astype(np.float32), X.indices.copy(), X.indptr.copy()), shape=X.shape
        )
        H.eliminate_zeros()
        out.append(H)
    return out


@torch.no_grad()
def _gated(
    projector: Projector, inputs: tuple[torch.Tensor, ...], taus: torch.Tensor
) -> torch.Tensor:
    """Activations at every level at once: (levels, items, topics), for thresholds taus
    (levels, topics). The default gate's formula, relu(h) clamp(beta (J - tau), 0, 1)."""
    h, overlap = projector.pre_activation(*inputs)
    _, beta = projector.activation.tau_beta()
    gate = ((overlap[None] - taus[:, None, :]) * beta).clamp_(0.0, 1.0)
    return h.clamp(min=0.0)[None] * gate


@torch.no_grad()
def choose_sparsity(
    projector: Projector,
    decoder: KeywordDecoder,
    X_fit: sp.csr_matrix,
    X_val: sp.csr_matrix,
    seed: int,
    device: torch.device,
) -> SparsityChoice:
    """Choose the level (see the module's docstring), set the projector's thresholds to it, and
    return what was tried and chosen."""
    start = time.perf_counter()
    act = projector.activation
    tau, _ = act.tau_beta()  # (topics,)
    rng = np.random.default_rng(seed + 2)
    if X_fit.shape[0] > FIT_ITEMS:
        X_fit = X_fit[np.sort(rng.choice(X_fit.shape[0], FIT_ITEMS, replace=False))]
    # Per-topic quantiles of the overlap over the pairs the trained gate switches on.
    h, overlap = projector.pre_activation(*_inputs(X_fit, device))
    on = projector.activation(h.clone(), overlap.clone()) > 0  # (items, topics)
    J = torch.where(on, overlap, torch.full_like(overlap, float("nan")))
    q = torch.tensor(LEVELS[1:], dtype=J.dtype, device=J.device)
    quant = torch.nanquantile(J, q, dim=0)  # (levels - 1, topics); NaN where none is on
    raised = torch.maximum(torch.nan_to_num(quant, nan=-1.0), tau[None, :])
    taus = torch.cat([tau[None, :], raised])  # (levels, topics)

    keep = np.diff(X_val.indptr) >= 2
    X_eval = X_val[keep]
    n_levels, n = len(LEVELS), X_eval.shape[0]
    recall = np.zeros((n_levels, n))
    zeros = np.zeros(n_levels)
    active = np.zeros(n_levels)
    if n > 0:
        whole = _gated(projector, _inputs(X_val, device), taus)  # (levels, items, topics)
        zeros = (whole <= 0).float().mean(dim=(1, 2)).cpu().numpy()
        active = (whole > 0).float().sum(dim=2).mean(dim=1).cpu().numpy()
        for hidden in _masks(X_eval, seed + 3):
            visible = X_eval - X_eval.multiply(hidden)
            visible.eliminate_zeros()
            for s in range(0, n, CHUNK):
                vis, hid = visible[s : s + CHUNK], hidden[s : s + CHUNK]
                Y = _gated(projector, _inputs(vis, device), taus)  # (levels, chunk, topics)
                scores = decoder(Y)  # (levels, chunk, keywords)
                seen = torch.from_numpy(vis.toarray() > 0).to(scores.device)
                scores.masked_fill_(seen[None], float("-inf"))
                top = scores.topk(TOP, dim=-1).indices.cpu().numpy()  # (levels, chunk, TOP)
                H = hid.toarray() > 0  # (chunk, keywords)
                hits = np.take_along_axis(H[None].repeat(n_levels, 0), top, axis=2).sum(axis=2)
                recall[:, s : s + CHUNK] += hits / np.maximum(H.sum(axis=1), 1)[None]
        recall /= DRAWS
    mean = recall.mean(axis=1) if n > 0 else np.zeros(n_levels)
    best = int(np.argmax(mean))
    se = (recall - recall[best]).std(axis=1, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(n_levels)
    # the sparsest level within one (paired) standard error of the best
    ok = [i for i in range(n_levels) if mean[i] >= mean[best] - se[i]]
    chosen = max(ok, key=lambda i: zeros[i]) if n > 0 else 0
    new_tau = taus[chosen]
    changed = int((new_tau > tau).sum())
    act.threshold.copy_(torch.maximum(new_tau, act.threshold))
    return SparsityChoice(
        rule="sparsest level within one paired standard error of the best validation recall@10",
        levels=[
            {
                "quantile": LEVELS[i],
                "zeros": round(float(zeros[i]), 4),
                "active_topics": round(float(active[i]), 2),
                "recall_at_10": round(float(mean[i]), 5),
                "se": round(float(se[i]), 5),
            }
            for i in range(n_levels)
        ],
        chosen=chosen,
        thresholds_raised=changed,
        validation_items=n,
        seconds=round(time.perf_counter() - start, 3),
    )
