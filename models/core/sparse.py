"""Sparse keyword batches: the CSR layout every projection path consumes.

A batch of items is three flat arrays (keyword ids, per-keyword weights, and row pointers),
which is what `torch.nn.functional.embedding_bag` and `scipy.sparse.csr_matrix` both take.
No dense `items x vocabulary` matrix is ever built from it on the projection path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch


@dataclass(frozen=True)
class SparseBatch:
    """A batch of keyword bags in CSR form.

    indices : int64 array of shape (nnz,), vocabulary ids
    weights : float32 array of shape (nnz,), non-negative keyword weights
    indptr  : int64 array of shape (n_items + 1,), row `i` is `indices[indptr[i]:indptr[i+1]]`
    unknown : int64 array of shape (n_items,), keywords per item that are not in the vocabulary
    """

    indices: np.ndarray
    weights: np.ndarray
    indptr: np.ndarray
    unknown: np.ndarray

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def known(self) -> np.ndarray:
        """Known keywords per item, shape (n_items,)."""
        return np.diff(self.indptr)

    def rows(self, start: int, end: int) -> SparseBatch:
        """Items start..end-1 as a batch of their own."""
        a, b = int(self.indptr[start]), int(self.indptr[end])
        return SparseBatch(
            indices=self.indices[a:b],
            weights=self.weights[a:b],
            indptr=self.indptr[start : end + 1] - a,
            unknown=self.unknown[start:end],
        )

    def to_csr(self, n_keywords: int) -> sp.csr_matrix:
        """The batch as a scipy CSR matrix of shape (n_items, n_keywords)."""
        return sp.csr_matrix(
            (self.weights, self.indices, self.indptr), shape=(len(self), n_keywords)
        )

    @classmethod
    def from_csr(cls, X: sp.csr_matrix) -> SparseBatch:
        X = sp.csr_matrix(X)
        return cls(
            indices=X.indices.astype(np.int64),
            weights=X.data.astype(np.float32),
            indptr=X.indptr.astype(np.int64),
            unknown=np.zeros(X.shape[0], dtype=np.int64),
        )

    def torch_inputs(
        self, device: torch.device | str = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`(indices, offsets, weights)` as `embedding_bag` takes them, on `device`.

        To a GPU the arrays go through pinned host memory with non-blocking copies, so the
        copies overlap with whatever the device is still doing; reading the result back is the
        one synchronisation. The pinned staging buffers are reused across batches: torch's
        caching host allocator hands a block back once the copy that used it has finished.
        """
        device = torch.device(device)

        def move(a: np.ndarray) -> torch.Tensor:
            t = torch.from_numpy(np.ascontiguousarray(a))
            if device.type == "cuda":
                return t.pin_memory().to(device, non_blocking=True)
            return t.to(device)

        return move(self.indices), move(self.indptr[:-1]), move(self.weights)
