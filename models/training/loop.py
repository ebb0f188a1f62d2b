"""Training: NMF (or LDA) initialisation, then a denoising objective in torch.

The objective hides a random share of each training item's keywords, projects the rest, and
scores the hidden ones under a softmax over the vocabulary (a multinomial likelihood, as in
denoising autoencoders for implicit feedback). That is the task the evaluation measures: given
part of a bag, rank the missing keywords. An L1 penalty on the activations asks for sparsity, the
same for every activation, so that sparsity is compared on equal terms.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from topicproj.models.core.artifacts import check_finite
from topicproj.models.core.decoder import KeywordDecoder
from topicproj.models.core.history import TrainResult
from topicproj.models.core.options import TrainOptions
from topicproj.models.core.projector import Projector
from topicproj.models.errors import NonFiniteError


def initial_topics(X: sp.csr_matrix, n_topics: int, init: str, seed: int) -> np.ndarray:
    """Topic-keyword weights of shape (topics, keywords) from scikit-learn, each row max 1."""
    if init == "lda":
        from sklearn.decomposition import LatentDirichletAllocation

        lda = LatentDirichletAllocation(
            n_components=n_topics, learning_method="batch", max_iter=50, random_state=seed
        )
        lda.fit(X)
        H = lda.components_ / lda.components_.sum(axis=1, keepdims=True)
    elif init in ("nndsvda", "nndsvd", "nndsvdar", "random"):
        from sklearn.decomposition import NMF

        nmf = NMF(n_components=n_topics, init=init, max_iter=300, random_state=seed)
        nmf.fit(X)
        H = nmf.components_
    else:
        raise ValueError(f"unknown init {init!r}; expected nndsvda, nndsvd, random or lda")
    H = np.asarray(H, dtype=np.float64)
    peak = H.max(axis=1, keepdims=True)
    # A topic NMF left empty would never get a gradient: give it a small random start.
    empty = peak[:, 0] <= 0
    if empty.any():
        rng = np.random.default_rng(seed)
        H[empty] = rng.uniform(0.0, 0.1, size=(int(empty.sum()), H.shape[1]))
        peak = H.max(axis=1, keepdims=True)
    return (H / peak).astype(np.float32)


def _batch_tensors(
    X: sp.csr_matrix, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    indices = torch.from_numpy(X.indices.astype(np.int64)).to(device)
    offsets = torch.from_numpy(X.indptr[:-1].astype(np.int64)).to(device)
    weights = torch.from_numpy(X.data.astype(np.float32)).to(device)
    return indices, offsets, weights


def masked_loss(
    projector: Projector,
    decoder: KeywordDecoder,
    X: sp.csr_matrix,
    mask_rate: float,
    rng: np.random.Generator,
    l1: float,
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Mean negative log-likelihood of the hidden keywords, and the L1 term.

    Returns (nll, sparsity_term, n_items_with_a_target): the term is the L1 penalty, or a
    targeted gate's own.
    """
    hidden = rng.random(X.nnz) < mask_rate
    visible = X.copy()
    visible.data = np.where(hidden, 0.0, X.data).astype(np.float32)
    visible.eliminate_zeros()
    target = X.copy()
    target.data = np.where(hidden, X.data, 0.0).astype(np.float32)
    target.eliminate_zeros()

    y = projector(*_batch_tensors(visible, device))  # (batch, topics)
    logp = F.log_softmax(decoder(y), dim=-1)  # (batch, keywords)
    rows = np.repeat(np.arange(X.shape[0]), np.diff(target.indptr))
    counts = np.diff(target.indptr)
    has_target = counts > 0
    n = int(has_target.sum())
    if n == 0:
        nll = logp.sum() * 0.0
    else:
        r = torch.from_numpy(rows).to(device)
        c = torch.from_numpy(target.indices.astype(np.int64)).to(device)
        w = torch.from_numpy(target.data).to(device)
        per_item = torch.zeros(X.shape[0], device=device).index_add_(0, r, -logp[r, c] * w)
        total = torch.from_numpy(np.maximum(target.sum(axis=1).A1, 1e-12).astype(np.float32))
        nll = (per_item / total.to(device))[torch.from_numpy(has_target).to(device)].mean()
    # A targeted gate holds its share of zeros with a multiplier of its own (set in its forward
    # pass); that replaces the L1 term, which would otherwise shrink every activation too.
    penalty = getattr(projector.activation, "training_penalty", None)
    if penalty is not None and torch.is_grad_enabled():
        return nll, penalty, n
    return nll, l1 * y.abs().sum(dim=1).mean(), n


def train(
    projector: Projector,
    decoder: KeywordDecoder,
    X: sp.csr_matrix,
    config: TrainOptions,
    device: torch.device,
    progress: bool = True,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train `projector` and `decoder` in place on the items of `X` (items x keywords).

    Early stopping keeps the weights of the epoch with the lowest validation loss.
    """
    start = time.perf_counter()
    rng = np.random.default_rng(config.random_state)
    torch.manual_seed(config.random_state)
    X = sp.csr_matrix(X, dtype=np.float32)
    X = X[np.diff(X.indptr) > 0]  # items with no known keyword teach nothing
    n = X.shape[0]
    if n < 2:
        raise ValueError(f"training needs at least 2 items with a known keyword, got {n}")
    order = rng.permutation(n)
    n_val = min(max(1, round(n * config.validation_fraction)), n - 1)
    X_val, X_train = X[order[:n_val]], X[order[n_val:]]

    projector.to(device).train()
    decoder.to(device).train()
    if hasattr(projector.activation, "target_zeros"):
        projector.activation.target_zeros = config.target_zeros
    params = [p for p in (*projector.parameters(), *decoder.parameters()) if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.learning_rate)

    val_inputs = _batch_tensors(X_val, device)

    @torch.no_grad()
    def validate() -> tuple[float, int, float]:
        """Validation loss, the topics active on no validation item, and the share of zero
        activations (whole bags in)."""
        projector.eval()
        decoder.eval()
        # The same hidden keywords at every epoch, so validation losses compare.
        nll, _, _ = masked_loss(
            projector,
            decoder,
            X_val,
            config.mask_rate,
            np.random.default_rng(config.random_state + 1),
            0.0,
            device,
        )
        # A dead topic is one that no item can switch on; its weights get no gradient from the
        # likelihood again, so counting them per epoch shows whether an activation kills topics.
        active = projector(*val_inputs) > 0  # (validation items, topics)
        dead = int((~active.any(dim=0)).sum())
        projector.train()
        decoder.train()
        return float(nll), dead, 1.0 - float(active.float().mean())

    best = math.inf
    best_epoch = 0
    best_state = None
    history: list[dict[str, float]] = []
    steps = math.ceil(X_train.shape[0] / config.batch_size)
    epochs = _progress(range(1, config.max_epochs + 1), progress)
    epoch = 0
    for epoch in epochs:
        perm = rng.permutation(X_train.shape[0])
        total = 0.0
        for s in range(steps):
            batch = X_train[perm[s * config.batch_size : (s + 1) * config.batch_size]]
            nll, l1_term, _ = masked_loss(
                projector, decoder, batch, config.mask_rate, rng, config.l1, device
            )
            loss = nll + l1_term
            if not torch.isfinite(loss):
                # One step on a non-finite loss makes every weight NaN: stop with a reason.
                raise NonFiniteError(
                    f"the training loss became {float(loss)} at epoch {epoch}, step {s + 1}; "
                    "lower learning_rate or l1"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            projector.constrain_()
            total += float(loss.detach())
        val, dead, zeros = validate()
        history.append(
            {
                "epoch": epoch,
                "train_loss": total / steps,
                "validation_loss": val,
                "dead_topics": dead,
                # sparsity as training moves it: whether it settles or keeps drifting
                "zero_fraction": zeros,
            }
        )
        if hasattr(epochs, "set_postfix"):
            epochs.set_postfix(loss=f"{total / steps:.4f}", val=f"{val:.4f}")
        if on_epoch is not None:
            on_epoch(history[-1])
        if val < best - 1e-5:
            best, best_epoch = val, epoch
            best_state = (
                copy.deepcopy(projector.state_dict()),
                copy.deepcopy(decoder.state_dict()),
            )
        elif epoch - best_epoch >= config.patience:
            break
    if hasattr(epochs, "close"):
        epochs.close()
    if best_state is not None:
        projector.load_state_dict(best_state[0])
        decoder.load_state_dict(best_state[1])
    projector.eval()
    decoder.eval()
    check_finite({**projector.state_dict(), **decoder.state_dict()}, "trained")
    return TrainResult(
        epochs=epoch,
        best_epoch=best_epoch,
        best_validation_loss=best,
        seconds=time.perf_counter() - start,
        history=history,
    )


def _progress(it: range, enabled: bool) -> Any:
    if not enabled:
        return it
    from tqdm.auto import tqdm

    # disable=None: no bar when stderr is not a terminal (CI logs, pipes).
    return tqdm(it, desc="epochs", unit="epoch", leave=False, disable=None)
