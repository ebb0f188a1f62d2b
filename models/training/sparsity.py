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
3. The same on a sample of `TRAIN_ITEMS` training items (their keywords hidden the same way).
4. The choice: the sparsest level whose training-sample recall is within `TOLERANCE` (3%) of
   the best level's, and whose validation recall is no worse than the trained model's (level 0)
   by more than one standard error (of the item-by-item difference from level 0: paired, as the
   levels share items and draws). The validation items alone are too few on a small catalog
   (about 300 on TMDB): their curve stays flat within its noise well past the level at which
   recall on new items falls, and a rule on them alone (the sparsest level within one standard
   error of the best) chose 0.8 zeros there and lost 9% of recall@10.

It costs a few forward passes over the validation items and the training sample, well under an
epoch. The levels, their recall on both sets and zeros, and the choice are recorded with the
model (`TrainResult.sparsity`).
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
# Training items whose masked recall is measured beside the validation items'. A small
# validation split (300 items on TMDB) leaves a curve flat within its noise far past the level
# where recall on new items falls; a sample of training items gives a smooth curve. Their recall
# is higher (the decoder has seen them) and falls sooner as gates shut, which errs toward the
# denser level.
TRAIN_ITEMS = 3000
# At most this share of the best recall@10 on the training sample may be given up for sparsity.
# The training curve falls sooner than recall on new items: on TMDB 50 by 3% at the level where
# test recall had fallen 1.4%. At 2% the short-item catalog stopped one level short of twice
# ReLU's zeros at no gain in recall (docs/activation.md, "The activation: sparsity chosen from
# the data").
TOLERANCE = 0.03
RULE = (
    f"sparsest level whose recall@10 is within {TOLERANCE:.0%} of the best on a sample of "
    "training items, and on the validation items no worse than the trained model's by more than "
    "one paired standard error"
)


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
def level_recall(
    projector: Projector,
    decoder: KeywordDecoder,
    X_val: sp.csr_matrix,
    taus: torch.Tensor,
    seed: int,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per level and item (with two or more keywords), the share of `DRAWS` hidden keywords
    ranked in the top 10; and per level the share of zeros and mean active topics per item."""
    keep = np.diff(X_val.indptr) >= 2
    X_eval = X_val[keep]
    n_levels, n = taus.shape[0], X_eval.shape[0]
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
    return recall, zeros, active


def level_thresholds(
    projector: Projector, X_fit: sp.csr_matrix, seed: int, device: torch.device
) -> torch.Tensor:
    """Each level's thresholds, (levels, topics): per topic, the q-quantile of its overlaps over
    the training pairs the trained gate switches on (level 0: the trained thresholds)."""
    tau, _ = projector.activation.tau_beta()  # (topics,)
    rng = np.random.default_rng(seed + 2)
    if X_fit.shape[0] > FIT_ITEMS:
        X_fit = X_fit[np.sort(rng.choice(X_fit.shape[0], FIT_ITEMS, replace=False))]
    h, overlap = projector.pre_activation(*_inputs(X_fit, device))
    on = projector.activation(h.clone(), overlap.clone()) > 0  # (items, topics)
    J = torch.where(on, overlap, torch.full_like(overlap, float("nan")))
    q = torch.tensor(LEVELS[1:], dtype=J.dtype, device=J.device)
    quant = torch.nanquantile(J, q, dim=0)  # (levels - 1, topics); NaN where none is on
    raised = torch.maximum(torch.nan_to_num(quant, nan=-1.0), tau[None, :])
    return torch.cat([tau[None, :], raised])


def _curve(recall: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per level: mean recall, and the paired standard error of its difference from level 0,
    the trained model (the levels share items and draws, so most of the noise cancels)."""
    n_levels, n = recall.shape
    if n < 2:
        return (recall.mean(axis=1) if n else np.zeros(n_levels)), np.zeros(n_levels)
    return recall.mean(axis=1), (recall - recall[0]).std(axis=1, ddof=1) / np.sqrt(n)


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
    rng = np.random.default_rng(seed)
    n_fit = min(TRAIN_ITEMS, X_fit.shape[0])
    X_seen = X_fit[np.sort(rng.choice(X_fit.shape[0], n_fit, replace=False))]
    taus = level_thresholds(projector, X_fit, seed, device)
    val, zeros, active = level_recall(projector, decoder, X_val, taus, seed, device)
    seen, _, _ = level_recall(projector, decoder, X_seen, taus, seed, device)
    mean, se = _curve(val)
    seen_mean, seen_se = _curve(seen)
    # within TOLERANCE of the best on the training sample; and on the validation items no worse
    # than the trained model by more than one standard error (a guard: it rules a level out only
    # where recall on new items clearly falls; their noise is too large to do more)
    ok = (seen_mean >= (1.0 - TOLERANCE) * seen_mean.max()) & (mean >= mean[0] - se)
    ok[0] = True  # the trained model itself, whatever the noise says
    chosen = max(np.flatnonzero(ok), key=lambda i: zeros[i])
    new_tau = taus[chosen]
    changed = int((new_tau > tau).sum())
    act.threshold.copy_(torch.maximum(new_tau, act.threshold))
    return SparsityChoice(
        rule=RULE,
        levels=[
            {
                "quantile": LEVELS[i],
                "zeros": round(float(zeros[i]), 4),
                "active_topics": round(float(active[i]), 2),
                "recall_at_10": round(float(mean[i]), 5),
                "se": round(float(se[i]), 5),
                "train_recall_at_10": round(float(seen_mean[i]), 5),
                "train_se": round(float(seen_se[i]), 5),
            }
            for i in range(len(LEVELS))
        ],
        chosen=int(chosen),
        thresholds_raised=changed,
        validation_items=val.shape[1],
        seconds=round(time.perf_counter() - start, 3),
        extra={"train_items": seen.shape[1], "train_tolerance": TOLERANCE},
    )
