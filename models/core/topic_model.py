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

from topicproj.models.errors import ModelDirectoryError, NotFittedError

from .artifacts import model_version, read_model_dir, write_model_dir
from .decoder import KeywordDecoder
from .device import resolve_device
from .estimator import EstimatorProtocol
from .explain import ItemExplanation, explain_batch
from .history import TrainResult
from .labels import LABELS, check_labels, derived_label, merge_labels, read_labels
from .lineage import Lineage, extend_topics, match_topics, similarity_matrix
from .options import DEFAULTS, TrainOptions
from .projector import Projector, ProjectorConfig
from .sparse import SparseBatch
from .traffic import Baseline, TrafficCounts
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
    path_ : Path
        Set by `load`: the model directory, where labels set later are written.
    lineage_ : Lineage or None
        Set when the model was trained from a parent (`fit(..., parent=...)`) or aligned to one
        (`align_to`): the parent's version and each topic's similarity to its parent topic.
    label_overrides_ : dict[int, str]
        The labels a person set; other topics are labelled from their top keywords (`labels`).
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
        max_df: float = DEFAULTS.max_df,
        stop_keywords: tuple[str, ...] = DEFAULTS.stop_keywords,
        init: str = DEFAULTS.init,
        max_epochs: int = DEFAULTS.max_epochs,
        patience: int = DEFAULTS.patience,
        batch_size: int = DEFAULTS.batch_size,
        learning_rate: float = DEFAULTS.learning_rate,
        mask_rate: float = DEFAULTS.mask_rate,
        l1: float | None = DEFAULTS.l1,
        target_zeros: float | None = DEFAULTS.target_zeros,
        validation_fraction: float = DEFAULTS.validation_fraction,
        random_state: int = DEFAULTS.random_state,
        device: str = "auto",
        verbose: bool = False,
    ) -> None:
        self.n_topics = n_topics
        self.activation = activation
        self.min_df = min_df
        self.max_vocabulary = max_vocabulary
        self.max_df = max_df
        self.stop_keywords = stop_keywords
        self.init = init
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.mask_rate = mask_rate
        self.l1 = l1
        self.target_zeros = target_zeros
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
        parent: TopicModel | None = None,
        add_topics: int = 0,
        on_epoch: Callable[[dict[str, float]], None] | None = None,
    ) -> TopicModel:
        """Fit on `X`, a sequence of keyword lists (one per item).

        `parent`, a fitted model with the same number of topics and activation, makes this a
        child version: its topics start from the parent's (keywords the parent lacked get
        weights from the items that use them; keywords `X` no longer has are dropped), and once
        trained they are renumbered to match the parent's (see `lineage.py`), with
        the parent's labels kept on the topics that kept their meaning. `init` is then unused.
        `add_topics` (with a parent) grows the child by that many new topics, numbered after the
        parent's and started from what the parent explains worst (see `emerging.py`); the child
        then has the parent's topics plus `add_topics`, which must be `n_topics`.

        The fitted model keeps a `baseline_` of its training catalog in topic space (see
        `traffic.py`), which serving and `topicproj drift` compare traffic with.

        `on_epoch`, when given, receives each epoch's entry of the training history (epoch,
        train_loss, validation_loss) as the epoch ends: for progress reports.
        """
        options = self.options
        if len(X) == 0:
            raise ValueError("cannot fit on an empty catalog")
        if parent is not None:
            parent._check_fitted()
            if add_topics < 0:
                raise ValueError(f"add_topics must be >= 0, got {add_topics}")
            want = (parent.n_topics + add_topics, parent.activation)
            if want != (self.n_topics, self.activation):
                grown = f" plus {add_topics} added" if add_topics else ""
                raise ValueError(
                    f"a child keeps its parent's topics and activation: the parent has "
                    f"{parent.n_topics} topics{grown} with {parent.activation!r}, this model "
                    f"{self.n_topics} with {self.activation!r}"
                )
        elif add_topics:
            raise ValueError("add_topics grows a parent's topics; give a parent")
        from topicproj.models.training.loop import initial_topics, train  # only fitting needs them

        device = resolve_device(self.device)
        start = time.perf_counter()
        vocab = Vocabulary.fit(
            X,
            min_df=self.min_df,
            max_size=self.max_vocabulary,
            max_df=options.max_df,
            stop_keywords=options.stop_keywords,
        )
        if len(vocab) == 0:
            raise ValueError(
                f"no keyword occurs on at least min_df={self.min_df} items (and on at most "
                f"max_df={self.max_df} of them, and not a stop keyword); lower min_df"
            )
        batch = vocab.map_batch(X)
        csr = batch.to_csr(len(vocab))
        csr.data[:] = 1.0  # topics are learned from keyword presence
        csr.sum_duplicates()
        csr.data = np.minimum(csr.data, 1.0)
        if (np.diff(csr.indptr) > 0).sum() < 2:
            raise ValueError("fewer than 2 items have a known keyword; nothing to learn from")
        torch.manual_seed(self.random_state)
        projector = Projector(ProjectorConfig(len(vocab), self.n_topics, self.activation))
        decoder = KeywordDecoder(self.n_topics, len(vocab))
        prior = np.log((vocab.document_frequency + 1.0) / (vocab.n_documents + 1.0))
        with torch.no_grad():
            decoder.prior.copy_(torch.from_numpy(prior.astype(np.float32)))
            if parent is None:
                topics = initial_topics(csr, self.n_topics, self.init, self.random_state)
                projector.keyword_topics.copy_(torch.from_numpy(topics.T))
                decoder.topic_keywords.copy_(torch.from_numpy(topics))
            else:
                _start_from(parent, vocab, csr, projector, decoder, self.random_state, add_topics)
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
        self.label_overrides_ = {}
        self.lineage_ = None
        if parent is not None:
            self.align_to(parent)
        self.baseline_ = self._training_baseline(X, batch)
        return self

    def _training_baseline(self, X: Items, batch: SparseBatch) -> Baseline:
        """The training catalog's counts in topic space, and the unknown-keyword rate of
        held-out items: the share of their keywords outside a vocabulary fitted on the other
        items (`validation_fraction` of them held out, drawn with `random_state`)."""
        counts = TrafficCounts.zeros(self.n_topics)
        step = 8192
        for s in range(0, len(batch), step):
            part = batch.rows(s, min(s + step, len(batch)))
            Y = self.project_batch(part).cpu().numpy()
            counts.add(TrafficCounts.of_batch(Y, part.known, part.unknown))
        order = np.random.default_rng(self.random_state).permutation(len(X))
        n_val = min(max(1, round(len(X) * self.validation_fraction)), len(X) - 1)
        fitted_on = Vocabulary.fit(
            [X[i] for i in order[n_val:]], min_df=self.min_df, max_size=self.max_vocabulary
        )
        held_out = fitted_on.map_batch([X[i] for i in order[:n_val]])
        sent = int(held_out.known.sum() + held_out.unknown.sum())
        return Baseline(counts, int(held_out.unknown.sum()) / max(sent, 1))

    # -- lineage ---------------------------------------------------------------------------------

    def align_to(self, parent: TopicModel) -> Lineage:
        """Renumber this model's topics so that topic k is the best match of the parent's
        topic k, record each one's similarity (`lineage_`), and take over the parent's labels
        on the topics that kept their meaning. Projections change only in the order of their
        columns."""
        self._check_fitted()
        parent._check_fitted()
        S = similarity_matrix(
            self.components_, self.vocabulary_.keywords,
            parent.components_, parent.vocabulary_.keywords,
        )  # fmt: skip
        order, matched = match_topics(S)
        self._renumber_topics(order)
        shared = sum(1 for k in self.vocabulary_.keywords if k in parent.vocabulary_)
        self.lineage_ = Lineage(
            parent=getattr(parent, "version_", None),
            similarity=[round(float(s), 6) for s in matched],
            keywords_added=len(self.vocabulary_) - shared,
            keywords_dropped=len(parent.vocabulary_) - shared,
            added_topics=self.n_topics - parent.n_topics,
        )
        self.label_overrides_ = {
            k: label
            for k, label in getattr(parent, "label_overrides_", {}).items()
            if not self.lineage_.new[k]
        }
        return self.lineage_

    @torch.no_grad()
    def _renumber_topics(self, order: np.ndarray) -> None:
        """Topic k becomes the old topic `order[k]`, in every tensor indexed by topic."""
        index = torch.as_tensor(order, dtype=torch.long, device=self.device_)
        W = self.projector_.keyword_topics
        W.copy_(W.index_select(1, index))
        D = self.decoder_.topic_keywords
        D.copy_(D.index_select(0, index))
        # The bias and the activation's per-topic parameters: every other projector tensor of
        # one entry per topic (keyword_topics, handled above, is the only 2-d one).
        for name, t in [*self.projector_.named_parameters(), *self.projector_.named_buffers()]:
            if name != "keyword_topics" and t.dim() == 1 and t.shape[0] == self.n_topics:
                t.copy_(t.index_select(0, index))

    # -- labels ----------------------------------------------------------------------------------

    def labels(self) -> list[str]:
        """Each topic's label: the one a person set, or its three top keywords.

        Cached while the weights and the labels set are unchanged: serving attaches labels to
        every top-k answer, and deriving them sorts every topic's weights.
        """
        self._check_fitted()
        own = getattr(self, "label_overrides_", {})
        W = self.projector_.keyword_topics
        key = (W.data_ptr(), W._version, tuple(own.items()))
        cached = getattr(self, "_labels_cache", None)
        if cached is None or cached[0] != key:
            derived = [derived_label(words) for words in self.top_keywords(3)]
            cached = (key, [own.get(k) or d for k, d in enumerate(derived)])
            self._labels_cache = cached
        return list(cached[1])

    def set_labels(self, labels: dict[int, str]) -> dict[int, str]:
        """Set (or, with "", clear) some topics' labels; returns the labels now set.

        ValueError names the first bad topic or label; nothing changes then.
        """
        self._check_fitted()
        self.label_overrides_ = merge_labels(
            getattr(self, "label_overrides_", {}), check_labels(labels, self.n_topics)
        )
        return dict(self.label_overrides_)

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
        pre-activation, and the gate reproduces `transform` (see `explain.py`)."""
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
        """Per topic: its label, top keywords, learned activation parameters and bias."""
        params = self.projector_.activation.parameters_table()
        bias = self.projector_.bias.detach().cpu().tolist()
        labels = self.labels()
        return [
            {
                "topic": k,
                "label": labels[k],
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
            "lineage": lineage.to_dict() if (lineage := getattr(self, "lineage_", None)) else None,
            "baseline": b.to_dict() if (b := getattr(self, "baseline_", None)) else None,
        }

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write this model as a model directory (see `models.artifacts`)."""
        self._check_fitted()
        tensors = {f"projector.{k}": v for k, v in self.projector_.state_dict().items()}
        tensors |= {f"decoder.{k}": v for k, v in self.decoder_.state_dict().items()}
        own = getattr(self, "label_overrides_", {})
        return write_model_dir(
            path,
            tensors,
            self.vocabulary_.to_dict(),
            self.model_info(),
            overwrite=overwrite,
            unlisted={LABELS: {str(k): v for k, v in own.items()}} if own else None,
            # The weights hold the activation's parameters; the configuration says how to
            # read them. Training options, times and runtime flags make no new version.
            content={"projector": asdict(self.projector_.config)},
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
        model.lineage_ = Lineage.from_dict(info["lineage"]) if info.get("lineage") else None
        # Model directories written before baselines existed load with none: drift is then
        # reported as unavailable.
        model.baseline_ = Baseline.from_dict(info["baseline"]) if info.get("baseline") else None
        model.label_overrides_ = read_labels(path, config.n_topics)
        model.version_ = model_version(path)
        model.path_ = Path(path)
        return model


def _start_from(
    parent: TopicModel,
    vocab: Vocabulary,
    X: sp.csr_matrix,
    projector: Projector,
    decoder: KeywordDecoder,
    seed: int,
    add_topics: int = 0,
) -> None:
    """Initialise `projector` and `decoder` (over `vocab`) from `parent`'s trained weights.

    Shared keywords keep the parent's weights exactly, and the bias and activation parameters
    are the parent's. New keywords get weights in the parent's topics from the items that use
    them (`extend_topics`), a decoder weight of 0 and their frequency prior, so the decoder
    predicts them at their base rate until training teaches it more.

    `add_topics` more topics follow the parent's: their keyword weights (in the projector and
    the decoder) from the residual the parent leaves (`emerging.residual_topics`), their bias
    and activation parameters the median of the parent's topics'.
    """
    p_index = {k: i for i, k in enumerate(parent.vocabulary_.keywords)}
    shared = np.array([j for j, k in enumerate(vocab.keywords) if k in p_index], dtype=np.int64)
    if len(shared) == 0:
        raise ValueError("the catalog shares no keyword with the parent; train from scratch")
    from_parent = np.array([p_index[vocab.keywords[j]] for j in shared], dtype=np.int64)
    new = np.setdiff1d(np.arange(len(vocab)), shared)
    Wp = parent.projector_.keyword_topics.detach().cpu().numpy()  # (parent keywords, topics)
    kp = parent.n_topics
    W = np.zeros((len(vocab), kp + add_topics), dtype=np.float32)
    W[shared, :kp] = Wp[from_parent]
    W[new, :kp] = extend_topics(X, Wp[from_parent], shared, seed)
    added = None
    if add_topics:
        from .emerging import residual_topics

        added = residual_topics(X, Wp[from_parent], shared, add_topics, seed)  # (added, vocab)
        W[:, kp:] = added.T
    state = {k: v.detach().cpu() for k, v in parent.projector_.state_dict().items()}
    for name, t in state.items():  # per-topic vectors grow by the median of the parent's
        if name != "keyword_topics" and t.dim() == 1 and t.shape[0] == kp and add_topics:
            state[name] = torch.cat([t, t.median().repeat(add_topics)])
    projector.load_state_dict({**state, "keyword_topics": torch.from_numpy(W)})
    Dp = parent.decoder_.topic_keywords.detach().cpu()
    decoder.topic_keywords.zero_()
    decoder.topic_keywords[:kp, torch.from_numpy(shared)] = Dp[:, torch.from_numpy(from_parent)]
    if added is not None:
        scale = float(Dp.norm(dim=1).median()) / float(np.median(np.linalg.norm(added, axis=1)))
        decoder.topic_keywords[kp:] = torch.from_numpy(added * max(scale, 0.0))
    prior_p = parent.decoder_.prior.detach().cpu()
    decoder.prior[torch.from_numpy(shared)] = prior_p[torch.from_numpy(from_parent)]
