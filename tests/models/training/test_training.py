"""Training: reproducible, constrained, and actually learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topicproj.models.core.device import resolve_device
from topicproj.models.core.options import DEFAULTS, TrainOptions
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.errors import NonFiniteError, NotFittedError

from ..factories import small_synthetic


def fit(activation: str = "overlap", seed: int = 0, **params) -> TopicModel:
    items = small_synthetic().catalog.keywords
    defaults = dict(min_df=2, max_epochs=15, device="cpu", random_state=seed)
    return TopicModel(5, activation=activation, **(defaults | params)).fit(items)


def test_training_is_reproducible_on_cpu():
    a, b = fit(seed=3), fit(seed=3)
    for (name, x), (_, y) in zip(
        a.projector_.state_dict().items(), b.projector_.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name
    assert not torch.equal(a.projector_.keyword_topics, fit(seed=4).projector_.keyword_topics)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "prelu", "overlap"])
def test_training_learns_and_keeps_constraints(activation):
    model = fit(activation)
    history = model.train_result_.history
    assert len(history) == model.n_epochs_
    best = min(h["validation_loss"] for h in history)
    assert best == pytest.approx(model.train_result_.best_validation_loss)
    assert best < history[0]["validation_loss"]  # it improved on the initialisation
    assert (model.components_ >= 0).all()
    if activation == "overlap":
        assert (model.projector_.activation.threshold >= 0).all()


def test_the_weights_kept_are_the_best_epochs_not_the_last():
    """Early stopping restores the weights of the epoch with the lowest validation loss."""
    from topicproj.models.core.decoder import KeywordDecoder
    from topicproj.models.core.projector import Projector, ProjectorConfig
    from topicproj.models.core.vocabulary import Vocabulary
    from topicproj.models.training.loop import initial_topics, train

    items = small_synthetic().catalog.keywords
    vocab = Vocabulary.fit(items, min_df=2)
    X = vocab.map_batch(items).to_csr(len(vocab))
    projector = Projector(ProjectorConfig(len(vocab), 5, "overlap"))
    decoder = KeywordDecoder(5, len(vocab))
    with torch.no_grad():
        projector.keyword_topics.copy_(torch.from_numpy(initial_topics(X, 5, "nndsvda", 0).T))
    # A high learning rate makes the validation loss turn back up, so the run stops after
    # `patience` epochs that were worse than the best one.
    # An L1 weight: the default would then raise the thresholds it chose after the best epoch.
    options = TrainOptions(n_topics=5, max_epochs=60, patience=3, learning_rate=0.2, l1=0.01)
    snapshots: list[dict[str, torch.Tensor]] = []

    def snapshot(_: dict[str, float]) -> None:
        snapshots.append({k: v.detach().clone() for k, v in projector.state_dict().items()})

    result = train(projector, decoder, X, options, torch.device("cpu"), False, snapshot)
    assert result.best_epoch < result.epochs == len(snapshots)
    best, last = snapshots[result.best_epoch - 1], snapshots[-1]
    kept = projector.state_dict()
    assert all(torch.equal(kept[k], best[k]) for k in best)
    assert not torch.equal(kept["keyword_topics"], last["keyword_topics"])


def test_early_stopping_stops_before_max_epochs():
    model = fit(max_epochs=500, patience=2, learning_rate=5e-2)
    assert model.n_epochs_ < 500
    assert model.n_epochs_ - model.train_result_.best_epoch == 2


def test_transform_shape_zero_rows_and_fitted_check():
    with pytest.raises(NotFittedError):
        TopicModel(3).transform([["a"]])
    model = fit()
    Y = model.transform([["alien", "space"], [], ["never seen"]])
    assert Y.shape == (3, 5) and Y.dtype == np.float32
    assert (Y[1] == 0).all() and (Y[2] == 0).all()
    assert (Y[0] > 0).any()


def test_bad_fit_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="empty catalog"):
        TopicModel(3).fit([])
    with pytest.raises(ValueError, match="min_df"):
        TopicModel(3, min_df=2).fit([["a"], ["b"], []])
    with pytest.raises(ValueError, match="activation"):
        TopicModel(3, activation="tanh").fit([["a", "b"]] * 5)


def test_device_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_estimator_parameters_are_the_training_options():
    assert TopicModel().options == DEFAULTS
    options = DEFAULTS.replace(n_topics=7, l1=0.0, random_state=3)
    model = TopicModel.from_options(options, device="cpu")
    assert model.options == options and model.device == "cpu"
    assert set(TopicModel().get_params()) == {f.name for f in TrainOptions.fields()} | {
        "device",
        "verbose",
    }


@pytest.mark.parametrize(
    ("param", "value", "fragment"),
    [
        ("batch_size", 0, "batch_size must be a positive integer"),
        ("max_epochs", 0, "max_epochs must be a positive integer"),
        ("validation_fraction", 2.0, "validation_fraction must be in (0, 1)"),
        ("learning_rate", 0.0, "learning_rate must be in (0, 1.0]"),
        ("learning_rate", float("inf"), "learning_rate must be a finite number"),
        ("learning_rate", float("nan"), "learning_rate must be a finite number"),
        ("l1", float("inf"), "l1 must be a finite number"),
        ("l1", 1e9, "l1 must be in [0, 100.0]"),
        ("mask_rate", float("nan"), "mask_rate must be a finite number"),
        ("device", "gpu", "unknown device 'gpu'"),
    ],
)
def test_bad_parameters_raise_before_training(param, value, fragment):
    with pytest.raises(ValueError) as e:
        TopicModel(3, **{param: value}).fit([["a", "b"]] * 5)
    assert fragment in str(e.value)


@pytest.mark.parametrize("activation", ["relu", "overlap"])
def test_history_counts_dead_topics_every_epoch(activation):
    model = fit(activation, max_epochs=6, patience=100)
    history = model.train_result_.history
    assert len(history) == model.n_epochs_ == 6
    dead = [h["dead_topics"] for h in history]
    assert all(isinstance(d, int) and 0 <= d <= 5 for d in dead)


def test_a_loss_that_goes_non_finite_fails_training_with_a_reason(monkeypatch):
    # Options are checked finite, so let a bad one past the check, as a defect would: the
    # loop itself must still stop rather than train a model of NaN.
    monkeypatch.setattr(TrainOptions, "validate", lambda self: None)
    model = TopicModel(3, min_df=1, max_epochs=2, l1=float("inf"), device="cpu")
    with pytest.raises(NonFiniteError, match="training loss became"):
        model.fit([["a", "b", "c"], ["b", "c", "d"], ["a", "d"]] * 10)
