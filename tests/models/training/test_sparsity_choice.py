"""The default overlap gate chooses its share of zeros on the validation items.

Two small catalogs are made for it. Each item has a main topic (4 to 6 of its keywords) and
keywords of a second topic. On the first, the second topic contributes one stray keyword: a weak
firing that predicts nothing, so shutting the weakest firings costs nothing and the choice goes
sparse (about one active topic per item). On the second, the second topic contributes three
keywords that predict each other: shutting its firings costs recall, so the choice stops at
about two active topics per item, denser.
"""

from __future__ import annotations

import numpy as np
import pytest

from topicproj.models.core.options import (
    CHOICE_TRAINING_ZEROS,
    DEFAULT_L1,
    DEFAULTS,
    TrainOptions,
)
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.training.sparsity import TOLERANCE

N_TOPICS, PER_TOPIC = 8, 10


def _catalog(second: int, main: tuple[int, int] = (4, 6), seed: int = 0, n: int = 2000):
    """Items of a main topic (`main` keywords) and `second` keywords of another topic."""
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(n):
        a, b = rng.choice(N_TOPICS, size=2, replace=False)
        k = int(rng.integers(main[0], main[1] + 1))
        kws = [f"t{a}_k{j}" for j in rng.choice(PER_TOPIC, size=k, replace=False)]
        kws += [f"t{b}_k{j}" for j in rng.choice(PER_TOPIC, size=second, replace=False)]
        items.append(kws)
    return items


def _fit(items, **params) -> TopicModel:
    # no activation and no sparsity option: the defaults choose
    settings = dict(
        min_df=2,
        max_epochs=40,
        learning_rate=5e-3,
        device="cpu",
        random_state=0,
    )
    return TopicModel(N_TOPICS, **(settings | params)).fit(items)


@pytest.fixture(scope="module")
def one_topic_items():
    """Sparsity is free: a main topic and one stray keyword."""
    return _fit(_catalog(1))


@pytest.fixture(scope="module")
def three_topic_items():
    """Sparsity costs recall: two topics of three or more keywords each."""
    return _fit(_catalog(3, (3, 6)))


def _passes(level, levels) -> bool:
    """The rule, on the record: within the tolerance of the best on the training sample, and
    on the validation items within one standard error of the trained model (level 0); 1e-5:
    the record rounds."""
    best_train = max(lv["train_recall_at_10"] for lv in levels)
    return (
        level["train_recall_at_10"] >= (1 - TOLERANCE) * best_train - 1e-5
        and level["recall_at_10"] >= levels[0]["recall_at_10"] - level["se"] - 1e-5
    )


def test_a_sparser_setting_where_it_costs_nothing_a_denser_one_where_it_costs_recall(
    one_topic_items, three_topic_items
):
    free = one_topic_items.train_result_.sparsity
    costly = three_topic_items.train_result_.sparsity
    for choice in (free, costly):
        levels = choice["levels"]
        assert len(levels) > 3 and levels[0]["quantile"] == 0.0

        # the rule: the chosen level passes, and no sparser level does
        chosen = choice["chosen_level"]
        assert _passes(chosen, levels)
        for lv in levels:
            if lv["zeros"] > chosen["zeros"]:
                assert not _passes(lv, levels)
    # free: sparser than trained, at no cost; about one active topic per item
    assert free["chosen_level"]["quantile"] > 0
    assert free["chosen_level"]["recall_at_10"] >= free["levels"][0]["recall_at_10"] - 0.01
    assert free["chosen_level"]["active_topics"] < 1.6
    # costly: denser, about the two topics each item has; the next sparser level loses recall
    assert free["chosen_level"]["zeros"] > costly["chosen_level"]["zeros"] + 0.1
    assert costly["chosen_level"]["active_topics"] > 2.3
    nxt = costly["levels"][costly["chosen"] + 1]
    assert nxt["recall_at_10"] < costly["chosen_level"]["recall_at_10"] - 0.05


def test_the_choice_is_applied_and_survives_save_and_load(one_topic_items, tmp_path):
    model = one_topic_items
    items = _catalog(1, seed=1, n=300)
    Y = model.transform(items)
    choice = model.train_result_.sparsity
    assert choice["chosen_level"]["quantile"] > 0  # the thresholds were raised
    assert choice["thresholds_raised"] > 0
    # the projections have the zeros the choice measured on the validation items, roughly
    assert float((Y <= 0).mean()) == pytest.approx(choice["chosen_level"]["zeros"], abs=0.1)
    loaded = TopicModel.load(model.save(tmp_path / "m"), device="cpu")
    assert loaded.train_result_.sparsity == choice
    assert np.array_equal(loaded.transform(items), Y)
    assert loaded.options == model.options and loaded.options.chooses_sparsity


def test_explicit_options_are_not_overridden():
    items = _catalog(1, n=600)
    by_l1 = _fit(items, l1=0.01, max_epochs=8)
    by_target = _fit(items, target_zeros=0.7, max_epochs=8)
    for model in (by_l1, by_target):
        assert model.train_result_.sparsity is None  # nothing chosen
        assert not model.options.chooses_sparsity
    assert by_l1.options.l1_weight == 0.01 and by_l1.options.held_zeros is None
    assert by_target.options.held_zeros == 0.7
    # a ReLU has no gate to choose with: it keeps its L1 weight
    relu = TrainOptions(activation="relu")
    assert not relu.chooses_sparsity and relu.l1_weight == DEFAULT_L1
    # the default gate chooses, trained held at a share of zeros; given a target, it is held to
    # it; given an L1 weight (0.01: the default of earlier versions), it is trained with it
    assert DEFAULTS.activation == "overlap" and DEFAULTS.chooses_sparsity
    assert DEFAULTS.held_zeros == CHOICE_TRAINING_ZEROS
    assert TrainOptions(activation="overlap_auto").chooses_sparsity  # the name it had opt-in
    assert TrainOptions(target_zeros=0.6).held_zeros == 0.6
    old = TrainOptions(l1=0.01)
    assert not old.chooses_sparsity and old.held_zeros is None and old.l1_weight == 0.01
    # models saved before the choice existed carry both numbers; they were trained with L1
    both = TrainOptions(l1=0.01, target_zeros=0.5)
    assert not both.chooses_sparsity and both.held_zeros is None


def test_a_model_saved_before_the_choice_existed_still_loads(one_topic_items, tmp_path):
    """Old model directories have no `sparsity` in their training record, and old options
    spell l1 and target_zeros as numbers."""
    import json

    from topicproj.models.core.artifacts import MODEL, read_model_dir, write_model_dir

    path = one_topic_items.save(tmp_path / "new")
    tensors, vocab, info = read_model_dir(path)
    info["training"].pop("sparsity")
    info["params"] |= {"l1": 0.01, "target_zeros": 0.5}
    info.pop("format_version")
    old = write_model_dir(tmp_path / "old", tensors, vocab, info)
    model = TopicModel.load(old, device="cpu")
    assert model.train_result_.sparsity is None
    assert model.options.l1 == 0.01
    assert json.loads((old / MODEL).read_text())["training"].get("sparsity") is None
