"""The metric functions, on cases small enough to work out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from lab import scoring


def csr(rows: list[list[int]], n: int) -> sp.csr_matrix:
    data = [1.0] * sum(map(len, rows))
    indices = [j for r in rows for j in r]
    indptr = np.cumsum([0] + [len(r) for r in rows])
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), n))


def test_hide_one_keyword_hides_exactly_one_of_items_with_two_or_more():
    X = csr([[0, 1, 2], [3], [4, 5], []], 6)
    visible, rows, hidden = scoring.hide_one_keyword(X, seed=0)
    assert rows.tolist() == [0, 2]
    assert np.diff(visible.indptr).tolist() == [2, 1]
    for i, r in enumerate(rows):
        kept = set(visible[i].indices.tolist())
        assert hidden[i] not in kept
        assert kept | {hidden[i]} == set(X[r].indices.tolist())


def test_ranking_metrics_exclude_inputs_and_count_ties_against():
    visible = csr([[0], [1]], 4)
    scores = np.array([[9.0, 3.0, 2.0, 1.0], [0.0, 9.0, 5.0, 5.0]])
    # item 0: keyword 0 is an input, so hidden keyword 1 ranks first
    # item 1: hidden keyword 3 ties with keyword 2, so it ranks second
    recall, mrr = scoring.ranking_metrics(scores, visible, np.array([1, 3]), k=1)
    assert recall == 0.5
    assert mrr == pytest.approx((1 + 1 / 2) / 2)


def test_npmi_bounds():
    X = csr([[0, 1], [0, 1], [2], [3]], 4)
    assert scoring.npmi(np.array([[0, 1]]), X) == pytest.approx(1.0)
    assert scoring.npmi(np.array([[2, 3]]), X) == pytest.approx(-1.0)
    assert scoring.diversity(np.array([[0, 1], [1, 2]])) == 0.75


def test_sparsity_counts_active_short_and_dead():
    Y = np.array([[0.0, 1.0, -0.5], [0.0, 2.0, 0.0], [0.0, 0.0, 0.3]])
    out = scoring.sparsity(Y, lengths=np.array([1, 5, 2]))
    assert out["zero_fraction"] == pytest.approx(5 / 9)
    assert out["active_topics"] == pytest.approx(1.0)  # negative values are not "active"
    assert out["active_topics_short"] == pytest.approx(1.0)
    assert out["dead_topics"] == 1


def test_planted_topic_scores_match_topics_by_keywords():
    planted = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=float)
    components = np.array([[0, 0, 0.9, 0.8], [0.7, 0.9, 0, 0.1]])  # learned order is swapped
    Y = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    out = scoring.planted_topic_scores(Y, components, planted, [[0], [1], [0]])
    assert out["topic_recall"] == 1.0
    assert out["topic_precision"] == pytest.approx(3 / 4)


def test_genre_map_is_high_for_informative_features():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=200)
    Z = np.c_[labels + rng.normal(0, 0.1, 200), rng.normal(size=200)]
    genres = [["a"] if v else ["b"] for v in labels]
    assert scoring.genre_map(Z[:150], genres[:150], Z[150:], genres[150:]) > 0.95
