"""The projector: keyword bags in, topic activations out.

`Projector.forward(indices, offsets, weights)` is the one function that online serving and
offline projection both call. It never builds a dense `items x vocabulary` matrix: the dot
products come from `embedding_bag`, and the overlap needs only those plus two norms.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .activation import make_activation

_EPS = 1e-12


@dataclass(frozen=True)
class ProjectorConfig:
    n_keywords: int
    n_topics: int
    activation: str = "overlap"


class Projector(nn.Module):
    """Topic weights W >= 0, per-topic biases and the activation.

    `keyword_topics` holds W transposed, shape (n_keywords, n_topics), the layout
    `embedding_bag` reads rows from.
    """

    def __init__(self, config: ProjectorConfig) -> None:
        super().__init__()
        self.config = config
        self.keyword_topics = nn.Parameter(torch.zeros(config.n_keywords, config.n_topics))
        self.bias = nn.Parameter(torch.zeros(config.n_topics))
        self.activation = make_activation(config.n_topics, config.activation)
        self._stats_cache: tuple[tuple, torch.Tensor, torch.Tensor] | None = None

    @torch.no_grad()
    def constrain_(self) -> None:
        """Project the parameters back onto their domain after an optimiser step."""
        self.keyword_topics.clamp_(min=0.0)  # topics stay non-negative
        self.activation.constrain_()

    def topic_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per topic: scale = max_v w_kv, and |m_k|^2 for m_k = w_k / scale. Both (topics,).

        Cached while W is unchanged and no gradient is needed, as in serving.
        """
        W = self.keyword_topics
        # In-place updates bump _version; .to(device or dtype) makes a new tensor (new pointer).
        key = (W.data_ptr(), W._version, W.device, W.dtype)
        if not torch.is_grad_enabled() and self._stats_cache is not None:
            cached_key, scale, norm2 = self._stats_cache
            if cached_key == key:
                return scale, norm2
        scale = W.amax(dim=0).clamp_min(_EPS)  # (topics,)
        norm2 = (W * W).sum(dim=0) / (scale * scale)  # (topics,)
        if not torch.is_grad_enabled():
            self._stats_cache = (key, scale, norm2)
        return scale, norm2

    def _dot_and_norm(
        self, indices: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x . w_k for every item and topic (batch, topics), and |x|^2 per item (batch,)."""
        W = self.keyword_topics
        xw = F.embedding_bag(indices, W, offsets, mode="sum", per_sample_weights=weights)
        n_items = offsets.shape[0]
        # new_full fills on the device; new_tensor([n]) would copy from pageable host memory.
        lengths = torch.diff(offsets, append=offsets.new_full((1,), indices.shape[0]))
        # output_size: without it, repeat_interleave reads the lengths back to size its
        # output, a device-to-host synchronisation on every CUDA batch.
        rows = torch.repeat_interleave(
            torch.arange(n_items, device=offsets.device), lengths, output_size=indices.shape[0]
        )
        xx = torch.zeros(n_items, dtype=W.dtype, device=W.device).index_add_(
            0, rows, weights * weights
        )  # (batch,)
        return xw, xx

    def pre_activation(
        self, indices: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(h, J), each of shape (batch, topics).

        Three full-size tensors are allocated, the rest is done in place: on the CPU each
        (batch, topics) tensor is a pass over memory.
        """
        xw, xx = self._dot_and_norm(indices, offsets, weights)
        scale, norm2 = self.topic_stats()
        xm = xw / scale  # (batch, topics)
        measure = getattr(self.activation, "overlap_from", None)
        if measure is not None:  # a lab candidate with an overlap of its own
            overlap = measure(xm, xx, norm2)  # (batch, topics)
        else:
            denom = torch.add(xx[:, None], norm2[None, :]).sub_(xm).clamp_min_(_EPS)
            overlap = xm.div_(denom)  # in [0, 1]
        # xw is kept for the gradient of xm with respect to the scale, so h can take its
        # memory only when nothing is recorded for backward.
        h = xw + self.bias if torch.is_grad_enabled() else xw.add_(self.bias)
        return h, overlap

    def forward(
        self, indices: torch.Tensor, offsets: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        h, overlap = self.pre_activation(indices, offsets, weights)
        return self.activation(h, overlap, consume=True)  # (batch, topics)
