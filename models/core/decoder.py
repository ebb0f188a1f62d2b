"""The decoder used to train the projector: topic activations back to keyword logits."""

from __future__ import annotations

import torch
import torch.nn as nn


class KeywordDecoder(nn.Module):
    """logits = y @ D + c, with D of shape (topics, keywords) and c the keyword prior."""

    def __init__(self, n_topics: int, n_keywords: int) -> None:
        super().__init__()
        self.topic_keywords = nn.Parameter(torch.zeros(n_topics, n_keywords))
        self.prior = nn.Parameter(torch.zeros(n_keywords))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return y @ self.topic_keywords + self.prior  # (batch, keywords)
