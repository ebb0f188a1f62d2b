"""`TopicModel`: the scikit-learn-style estimator over keyword bags."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from models.errors import ModelDirectoryError, NotFittedError

from .artifacts import model_version, read_model_dir, write_model_dir
from .decoder import KeywordDecoder
from .device import resolve_device
from .estimator import EstimatorProtocol
from .explain import ItemExplanation, explain_batch
from .history import TrainResult
from .options import DEFAULTS, TrainOptions
from .projector import Projector, ProjectorConfig
from .sparse import SparseBatch
from .vocabulary import Vocabulary

Items = Sequence[Sequence[str]]


class TopicModel(EstimatorProtocol):
    """Learn topics from bags of keywords and project items onto them.

    Parameters
    ----------
    The training options and their defaults are those of `TrainOptions` (models/core/options.py),
    where each is described once; `device` ({"auto", "cpu", "cuda"}) and `verbose` (a progress
    bar over epochs) are not training options.

    Attributes
    ----------
    vocabulary_ : Vocabulary
    projector_ : Projector
    decoder_ : KeywordDecoder
    n_epochs_ : int
    train_result_ : TrainResult
    version_ : str
        Set by `load`: the model directory's content digest.
    """

    # The defaults are TrainOptions' own: scikit-learn reads the parameters from this
    # signature, so they are spelled out here and their values taken from the one definition.
    def __init__(
        self,
        n_topics: int = DEFAULTS.n_topics,
        *,
        activation: str = DEFAULTS.activation,
        min_df: int = DEFAULTS.min_df,
        max_vocabulary: int | None = DEFAULTS.max_vocabulary,
        init: str = DEFAULTS.init,
        max_epochs: int = DEFAULTS.max_epochs,
        patience: int = DEFAULTS.patience,
        batch_size: int = DEFAULTS.batch_size,
        learning_rate: float = DEFAULTS.learning_rate,
        mask_rate: float = DEFAULTS.mask_rate,
        l1: float = DEFAULTS.l1,
        validation_fraction: float = DEFAULTS.validation_fraction,
        random_state: int = DEFAULTS.random_state,
        device: str = "auto",
        verbose: bool = False,
    ) -> None:
        self.n_topics = n_topics
        self.activation = activation
        self.min_df = min_df
        self.max_vocabulary = max_vocabulary
        self.init = init
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.mask_rate = mask_rate
        self.l1 = l1
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    @classmethod
    def from_options(cls, options: TrainOptions, **runtime: Any) -> TopicModel:
        """A model with these training options; `runtime` is `device` and `verbose`."""
        return cls(**options.to_dict(), **runtime)

    @property
    def options(self) -> TrainOptions:
        """The training options, checked (ValueError names the first one out of range)."""
        return TrainOptions(**{f.name: getattr(self, f.name) for f in TrainOptions.fields()})

    # -- fitting ---------------------------------------------------------------------------------

    def fit(
        self,
        X: Items,
        y: Any = None,
        *,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
    ) -> TopicModel:
        """Fit on `X`, a sequence of keyword lists (one per item).

        `on_epoch`, when given, receives each epoch's entry of the training history (epoch,
        train_loss, validation_loss) as the epoch ends: for progress reports.
        """
        options = self.options
        if len(X) == 0:
            raise ValueError("cannot fit on an empty catalog")
        from models.training.loop import initial_topics, train  # only fitting needs them

        device = resolve_device(self.device)
        start = time.perf_counter()
        vocab = Vocabulary.fit(X, min_df=self.min_df, max_size=self.max_vocabulary)
        if len(vocab) == 0:
            raise ValueError(
                f"no keyword occurs on at least min_df={self.min_df} items; lower min_df"
            )
        batch = vocab.map_batch(X)
        csr = batch.to_csr(len(vocab))
        csr.data[:] = 1.0  # topics are learned from keyword presence
        csr.sum_duplicates()
        csr.data = np.minimum(csr.data, 1.0)
        if (np.diff(csr.indptr) > 0).sum() < 2:
            raise ValueError("fewer than 2 items have a known keyword; nothing to learn from")
        torch.manual_seed(self.random_state)
        topics = initial_topics(csr, self.n_topics, self.init, self.random_state)  # (K, V)
        projector = Projector(ProjectorConfig(len(vocab), self.n_topics, self.activation))
        decoder = KeywordDecoder(self.n_topics, len(vocab))
        with torch.no_grad():
            projector.keyword_topics.copy_(torch.from_numpy(topics.T))
            decoder.topic_keywords.copy_(torch.from_numpy(topics))
            prior = np.log((vocab.document_frequency + 1.0) / (vocab.n_documents + 1.0))
            decoder.prior.copy_(torch.from_numpy(prior.astype(np.float32)))
        result = train(
            projector, decoder, csr, options, device, progress=self.verbose, on_epoch=on_epoch
        )
        self.vocabulary_ = vocab
        self.projector_ = projector
        self.decoder_ = decoder
        self.train_result_ = result
        self.n_epochs_ = result.epochs
        self.train_seconds_ = time.perf_counter() - start
        self.n_features_in_ = len(vocab)
        return self

    # -- projection ------------------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "projector_"):
            raise NotFittedError("this TopicModel is not fitted yet; call fit or load first")

    @property
    def device_(self) -> torch.device:
        self._check_fitted()
        return self.projector_.keyword_topics.device

    @torch.no_grad()
    def project_batch(self, batch: SparseBatch) -> torch.Tensor:
        """Activations of shape (n_items, n_topics) for an already mapped batch, on the device."""
        self._check_fitted()
        return self.projector_(*batch.torch_inputs(self.device_))

    def transform(self, X: Items, batch_size: int = 8192) -> np.ndarray:
        """Project keyword lists: an array of shape (n_items, n_topics), float32."""
        self._check_fitted()
        out = np.zeros((len(X), self.n_topics), dtype=np.float32)
        for s in range(0, len(X), batch_size):
            batch = self.vocabulary_.map_batch(X[s : s + batch_size])
            out[s : s + len(batch)] = self.project_batch(batch).cpu().numpy()
        return out

    def transform_csr(self, X: sp.csr_matrix) -> np.ndarray:
        """Project items given as a CSR matrix over this model's vocabulary."""
        self._check_fitted()
        return self.project_batch(SparseBatch.from_csr(X)).cpu().numpy()

    def explain(self, X: Items, top_keywords: int = 5) -> list[ItemExplanation]:
        """Why each item got its topics: per active topic, the keywords with the largest terms
        of its pre-activation; per topic that shares a keyword but stayed at zero, the overlap
        and the threshold that closed its gate. Exact: the terms and the bias add up to the
        pre-activation, and the gate reproduces `transform` (see `models.core.explain`)."""
        self._check_fitted()
        batch = self.vocabulary_.map_batch(X)
        return explain_batch(self.projector_, batch, self.vocabulary_.keywords, top_keywords)

    @torch.no_grad()
    def keyword_scores(self, X: sp.csr_matrix) -> np.ndarray:
        """Decoder scores of every keyword, shape (n_items, n_keywords), for ranking."""
        self._check_fitted()
        y = self.project_batch(SparseBatch.from_csr(X))
        return self.decoder_(y).cpu().numpy()

    @property
    def components_(self) -> np.ndarray:
        """Topic-keyword weights W, shape (n_topics, n_keywords)."""
        self._check_fitted()
        return self.projector_.keyword_topics.detach().cpu().numpy().T

    def top_keywords(self, n: int = 10) -> list[list[str]]:
        W = self.components_
        order = np.argsort(-W, axis=1, kind="stable")[:, :n]
        return [[self.vocabulary_.keywords[j] for j in row] for row in order]

    def topic_table(self, n_keywords: int = 10) -> list[dict[str, Any]]:
        """Per topic: its top keywords and its learned activation parameters and bias."""
        params = self.projector_.activation.parameters_table()
        bias = self.projector_.bias.detach().cpu().tolist()
        return [
            {
                "topic": k,
                "top_keywords": words,
                "slope": params["slope"][k],
                "threshold": params["threshold"][k],
                "sharpness": params["sharpness"][k],
                "bias": bias[k],
            }
            for k, words in enumerate(self.top_keywords(n_keywords))
        ]

    # -- persistence -----------------------------------------------------------------------------

    def model_info(self) -> dict[str, Any]:
        self._check_fitted()
        return {
            "projector": asdict(self.projector_.config),
            "params": self.get_params(),
            "activation": {
                "name": self.activation,
                "parameters": self.projector_.activation.parameters_table(),
            },
            "training": self.train_result_.to_dict() if hasattr(self, "train_result_") else None,
            "data": getattr(self, "data_summary_", None),
        }

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write this model as a model directory (see `models.artifacts`)."""
        self._check_fitted()
        tensors = {f"projector.{k}": v for k, v in self.projector_.state_dict().items()}
        tensors |= {f"decoder.{k}": v for k, v in self.decoder_.state_dict().items()}
        return write_model_dir(
            path, tensors, self.vocabulary_.to_dict(), self.model_info(), overwrite=overwrite
        )

    @classmethod
    def load(cls, path: str | Path, *, device: str = "auto") -> TopicModel:
        """Rebuild a model from its directory, verifying every file's checksum."""
        tensors, vocab, info = read_model_dir(path)
        try:
            params = {**info["params"], "device": device}
            model = cls(**params)
            config = ProjectorConfig(**info["projector"])
            projector = Projector(config)
            projector.load_state_dict(
                {
                    k.removeprefix("projector."): v
                    for k, v in tensors.items()
                    if k.startswith("projector.")
                }
            )
            decoder = KeywordDecoder(config.n_topics, config.n_keywords)
            decoder.load_state_dict(
                {
                    k.removeprefix("decoder."): v
                    for k, v in tensors.items()
                    if k.startswith("decoder.")
                }
            )
            vocabulary = Vocabulary.from_dict(vocab)
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            raise ModelDirectoryError(path, f"inconsistent contents ({e})") from None
        if len(vocabulary) != config.n_keywords:
            raise ModelDirectoryError(path, "vocabulary size does not match the weights")
        dev = resolve_device(device)
        model.vocabulary_ = vocabulary
        model.projector_ = projector.to(dev).eval()
        model.decoder_ = decoder.to(dev).eval()
        model.n_features_in_ = config.n_keywords
        if info.get("training"):
            model.train_result_ = TrainResult(**info["training"])
            model.n_epochs_ = model.train_result_.epochs
        model.data_summary_ = info.get("data")
        model.version_ = model_version(path)
        return model
