"""Child versions: warm start, alignment to the parent, lineage on disk, and topic labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from topicproj.models.core.artifacts import model_version
from topicproj.models.core.labels import LABELS, read_labels
from topicproj.models.core.lineage import match_topics, similarity_matrix
from topicproj.models.core.topic_model import TopicModel

from ..factories import TMDB, small_synthetic

QUICK = {"min_df": 2, "max_epochs": 15, "learning_rate": 0.01, "device": "cpu"}


@pytest.fixture(scope="module")
def parent() -> TopicModel:
    return TopicModel(5, **QUICK).fit(small_synthetic(400, seed=0).catalog.keywords)


def test_alignment_undoes_any_renumbering(parent, tmp_path):
    shuffled = TopicModel.load(parent.save(tmp_path / "p"), device="cpu")
    order = np.array([3, 0, 4, 1, 2])
    shuffled._renumber_topics(order)
    items = small_synthetic(50, seed=9).catalog.keywords
    # Equal up to float rounding: the sums run over a different memory layout.
    np.testing.assert_allclose(
        shuffled.transform(items), parent.transform(items)[:, order], rtol=1e-5, atol=1e-6
    )

    lineage = shuffled.align_to(parent)
    np.testing.assert_allclose(lineage.similarity, 1.0, atol=1e-6)
    assert lineage.kept == 5 and not any(lineage.new)
    assert lineage.keywords_added == lineage.keywords_dropped == 0
    # Every tensor indexed by topic followed: the projections are the parent's again.
    np.testing.assert_allclose(
        shuffled.transform(items), parent.transform(items), rtol=1e-5, atol=1e-6
    )


def test_match_topics_maximises_total_similarity_not_each_greedily():
    # Greedy would give child 0 to parent 0 (0.9) and leave child 1 with 0.1; the assignment
    # gives parent 0 to child 1 (0.8) and parent 1 to child 0 (0.85): 1.65 > 1.0.
    S = np.array([[0.9, 0.85], [0.8, 0.1]])
    order, matched = match_topics(S)
    assert order.tolist() == [1, 0]
    np.testing.assert_allclose(matched, [0.8, 0.85])
    with pytest.raises(ValueError, match="parent's number of topics"):
        match_topics(np.ones((2, 3)))


def test_similarity_spans_both_vocabularies():
    W_child = np.array([[1.0, 0.0, 1.0]])  # over a, b, c
    W_parent = np.array([[1.0, 1.0]])  # over a, d
    S = similarity_matrix(W_child, ["a", "b", "c"], W_parent, ["a", "d"])
    assert S[0, 0] == pytest.approx(0.5)  # a is shared; c and d each count on one side only


def test_a_child_starts_from_its_parent_with_a_grown_vocabulary(parent):
    from topicproj.models.core.decoder import KeywordDecoder
    from topicproj.models.core.projector import Projector, ProjectorConfig
    from topicproj.models.core.topic_model import _start_from
    from topicproj.models.core.vocabulary import Vocabulary

    items = small_synthetic(400, seed=0).catalog.keywords
    grown = [[*kws, "brand new"] if i % 3 == 0 else kws for i, kws in enumerate(items)]
    vocab = Vocabulary.fit(grown, min_df=2)
    X = vocab.map_batch(grown).to_csr(len(vocab))
    X.data[:] = 1.0
    projector = Projector(ProjectorConfig(len(vocab), 5, parent.activation))
    decoder = KeywordDecoder(5, len(vocab))
    with torch.no_grad():
        _start_from(parent, vocab, X, projector, decoder, seed=0)
    W = projector.keyword_topics.detach().numpy()
    Wp = parent.projector_.keyword_topics.detach().numpy()
    for keyword in parent.vocabulary_.keywords:
        np.testing.assert_array_equal(
            W[vocab.id(keyword)], Wp[parent.vocabulary_.id(keyword)], err_msg=keyword
        )
    new = W[vocab.id("brand new")]
    assert new.max() > 0  # it starts in the topics of the items that use it
    assert decoder.topic_keywords[:, vocab.id("brand new")].abs().sum() == 0
    np.testing.assert_array_equal(projector.bias.detach(), parent.projector_.bias.detach())
    threshold = projector.activation.threshold.detach()
    np.testing.assert_array_equal(threshold, parent.projector_.activation.threshold.detach())


def test_a_child_keeps_its_parents_topics_and_labels_and_writes_its_lineage(parent, tmp_path):
    parent_dir = parent.save(tmp_path / "parent")
    parent = TopicModel.load(parent_dir, device="cpu")
    parent.set_labels({0: "first", 1: "second", 2: "third", 3: "fourth", 4: "fifth"})
    later = small_synthetic(400, seed=1).catalog.keywords  # more items of the same topics
    child = TopicModel(5, **QUICK, random_state=3).fit(later, parent=parent)
    scratch = TopicModel(5, **QUICK, random_state=3).fit(later)
    scratch_lineage = scratch.align_to(parent)

    lineage = child.lineage_
    assert lineage.parent == parent.version_
    assert lineage.kept >= 4, lineage.similarity
    assert np.mean(lineage.similarity) > np.mean(scratch_lineage.similarity)
    kept = [k for k in range(5) if not lineage.new[k]]
    assert child.label_overrides_ == {k: parent.label_overrides_[k] for k in kept}

    path = child.save(tmp_path / "child")
    loaded = TopicModel.load(path, device="cpu")
    assert loaded.lineage_ == lineage
    assert loaded.labels() == child.labels()
    info = json.loads((path / "model.json").read_text())
    assert info["lineage"]["parent"] == parent.version_


def test_a_child_must_keep_its_parents_topic_count(parent):
    with pytest.raises(ValueError, match="keeps its parent's topics"):
        TopicModel(4, **QUICK).fit(small_synthetic(100).catalog.keywords, parent=parent)
    with pytest.raises(ValueError, match="shares no keyword"):
        TopicModel(5, **QUICK).fit([["zz1", "zz2"], ["zz1", "zz2"]] * 5, parent=parent)


def test_labels_are_derived_set_cleared_and_kept_out_of_the_version(parent, tmp_path):
    path = parent.save(tmp_path / "m")
    model = TopicModel.load(path, device="cpu")
    derived = model.labels()
    top = model.top_keywords(3)
    assert derived == [" / ".join(words) for words in top]

    assert model.set_labels({2: "  Space opera  "}) == {2: "Space opera"}
    assert model.labels()[2] == "Space opera" and model.labels()[1] == derived[1]
    for bad, message in [
        ({5: "x"}, "not a topic"),
        ({-1: "x"}, "not a topic"),
        ({1: "x" * 65}, "at most 64"),
        ({1: "a\nb"}, "control character"),
    ]:
        with pytest.raises(ValueError, match=message):
            model.set_labels(bad)
    assert model.label_overrides_ == {2: "Space opera"}  # a refused change changes nothing

    version = model_version(path)
    model.save(path, overwrite=True)
    assert model_version(path) == version  # the labels file is outside the manifest
    assert read_labels(path, 5) == {2: "Space opera"}
    assert TopicModel.load(path, device="cpu").labels()[2] == "Space opera"
    model.set_labels({2: ""})
    assert model.labels() == derived

    (path / LABELS).write_text("{not json", encoding="utf-8")
    assert TopicModel.load(path, device="cpu").labels() == derived  # damaged: derived labels


def test_stored_cosine_counts_an_item_that_went_silent_as_moved():
    from lab.continuity import stored_cosine

    before = np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0], [1.0, 1.0]])
    after = np.array([[2.0, 0.0], [0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    # items: same direction (1), went silent (0), zero both times (left out), 45 degrees
    assert stored_cosine(before, after) == pytest.approx((1 + 0 + 2**-0.5) / 3)


def test_the_year_split_experiment_reports_both_ways_of_training(tmp_path):
    from lab.continuity import report_markdown, run_experiment

    catalog = small_synthetic(300, seed=2).catalog
    years = [2000 if i % 3 else 2020 for i in range(len(catalog))]
    result = run_experiment(
        catalog, years, year=2010, seeds=[0], n_topics=5, progress=False,
        min_df=2, max_epochs=4, learning_rate=0.01,
    )  # fmt: skip
    setting = result["setting"]
    assert setting["items_first"] < setting["items_all"]
    for name in ("child", "scratch"):
        run = result["runs"][0][name]
        assert 0 <= run["kept_share"] <= 1 and len(run["similarity"]) == 5
        assert 0 <= run["stored_cosine"] <= 1 and 0 <= run["recall_at_10"] <= 1
    table = report_markdown(result, "cmd")
    assert "| child of version 1 |" in table and "| from scratch, aligned |" in table


@pytest.mark.skipif(not TMDB.exists(), reason="needs ../shared/data (TMDB)")
def test_release_years_come_from_the_tmdb_file():
    from lab.continuity import release_years

    years = release_years(TMDB)
    assert len(years) >= 4800 and years["19995"] == 2009  # Avatar
