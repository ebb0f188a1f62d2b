"""Vocabulary: normalisation, pruning, deterministic ids, batch mapping and persistence."""

from __future__ import annotations

import json
import unicodedata

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topicproj.models.core.vocabulary import Vocabulary, normalize_array, normalize_keyword

# Document frequencies: a 4, b 3, c 3, d 2, e 1, f 1 (the repeats within an item count once).
ITEMS = [
    ["a", "b", "c", "A"],
    ["a", "b", "d"],
    ["a", "c", "e", "c"],
    ["a", "b", "c", "d"],
    ["f"],
    [],
]


# -- normalisation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Straße", "strasse"),
        ("  Space War\t", "space war"),
        ("ÉCOLE", "école"),
        ("e\u0301cole", "\u00e9cole"),  # decomposed to composed (NFC)
        ("\ufb01lm", "film"),  # the "fi" ligature case-folds to two letters
        ("ΣΊΣΥΦΟΣ", "σίσυφοσ"),  # casefold, not lower(): no final sigma
        ("already fine", "already fine"),
        ("   ", ""),
    ],
)
def test_normalize_keyword(raw, expected):
    assert normalize_keyword(raw) == expected
    assert unicodedata.is_normalized("NFC", normalize_keyword(raw))


MIXED = [
    "Space",
    "  padded  ",
    "Straße",
    "e\u0301",
    "ÅNGSTRÖM",
    "東京",
    "İstanbul",
    "\ufb01",
    "plain ascii",
    "",
    "\u00a0nbsp\u00a0",
    "Mixed ASCII and Ünïcödé",
]


def test_normalize_array_matches_normalize_keyword_on_mixed_strings():
    out = normalize_array(pa.array(MIXED, type=pa.string()))
    assert out.type == pa.string()
    assert out.to_pylist() == [normalize_keyword(k) for k in MIXED]


def test_normalize_array_on_pure_ascii_and_with_nulls():
    ascii_only = ["ABC", " x ", "MiXeD\tcase"]
    assert normalize_array(pa.array(ascii_only)).to_pylist() == ["abc", "x", "mixed\tcase"]
    assert normalize_array(pa.array(["Straße", None, "A"])).to_pylist() == ["strasse", None, "a"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text()))
def test_normalize_array_equals_normalize_keyword_on_any_text(keywords):
    out = normalize_array(pa.array(keywords, type=pa.string())).to_pylist()
    assert out == [normalize_keyword(k) for k in keywords]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(max_codepoint=127))))
def test_normalize_array_equals_normalize_keyword_on_ascii_text(keywords):
    out = normalize_array(pa.array(keywords, type=pa.string())).to_pylist()
    assert out == [normalize_keyword(k) for k in keywords]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_normalize_keyword_is_idempotent(keyword):
    once = normalize_keyword(keyword)
    assert normalize_keyword(once) == once


# -- fitting -----------------------------------------------------------------------------------


def test_fit_orders_by_document_frequency_then_alphabetically():
    vocab = Vocabulary.fit(ITEMS, min_df=1)
    assert vocab.keywords == ["a", "b", "c", "d", "e", "f"]
    assert vocab.document_frequency.tolist() == [4, 3, 3, 2, 1, 1]
    assert vocab.document_frequency.dtype == np.int64
    assert vocab.n_documents == 6
    assert [vocab.id(k) for k in ("a", "B", " c ", "zzz")] == [0, 1, 2, None]
    assert "A" in vocab
    assert "zzz" not in vocab


def test_fit_is_deterministic_whatever_the_item_order():
    forward = Vocabulary.fit(ITEMS, min_df=1)
    backward = Vocabulary.fit([list(reversed(k)) for k in reversed(ITEMS)], min_df=1)
    assert forward.keywords == backward.keywords
    np.testing.assert_array_equal(forward.document_frequency, backward.document_frequency)


def test_fit_normalises_before_counting():
    vocab = Vocabulary.fit([["Straße"], ["STRASSE"], [" strasse "], ["Other"]], min_df=1)
    assert vocab.keywords == ["strasse", "other"]
    assert vocab.document_frequency.tolist() == [3, 1]


def test_min_df_drops_rare_keywords():
    vocab = Vocabulary.fit(ITEMS, min_df=3)
    assert vocab.keywords == ["a", "b", "c"]
    assert vocab.min_df == 3


def test_max_size_keeps_the_most_frequent():
    vocab = Vocabulary.fit(ITEMS, min_df=1, max_size=2)
    assert vocab.keywords == ["a", "b"]  # b and c tie on 3: alphabetical order breaks it
    assert vocab.max_size == 2
    assert Vocabulary.fit(ITEMS, min_df=2, max_size=10).keywords == ["a", "b", "c", "d"]


@pytest.mark.parametrize("kwargs", [{"min_df": 0}, {"min_df": 1, "max_size": 0}])
def test_fit_rejects_bad_limits(kwargs):
    with pytest.raises(ValueError, match="must be >= 1"):
        Vocabulary.fit(ITEMS, **kwargs)


def test_stats_count_pruned_keywords():
    items = [*ITEMS, ["  ", "g"], ["e"]]  # a blank keyword; e now on 2 items, g on 1
    vocab = Vocabulary.fit(items, min_df=2)
    assert vocab.keywords == ["a", "b", "c", "d", "e"]
    assert vocab.stats == {
        "items": 8,
        "keyword_occurrences": 19,
        "distinct_keywords": 7,
        "kept_keywords": 5,
        "pruned_keywords": 2,  # f and g
        "pruned_occurrences": 2,
        "empty_keywords": 1,
        "items_without_kept_keyword": 3,  # ["f"], [] and ["  ", "g"]
    }


# -- mapping -----------------------------------------------------------------------------------


@pytest.fixture
def vocab() -> Vocabulary:
    return Vocabulary.fit(ITEMS, min_df=2)  # a b c d


def test_map_batch_indices_indptr_and_unknown(vocab):
    items = [["a", "zz"], [], ["zz", "yy"], ["D", " B "], ["c"]]
    batch = vocab.map_batch(items)
    assert len(batch) == 5
    assert batch.indices.tolist() == [0, 1, 3, 2]  # ascending within an item
    assert batch.indptr.tolist() == [0, 1, 1, 1, 3, 4]
    assert batch.unknown.tolist() == [1, 0, 2, 0, 0]
    assert batch.known.tolist() == [1, 0, 0, 2, 1]
    assert batch.weights.dtype == np.float32
    np.testing.assert_array_equal(batch.weights, np.ones(4, np.float32))
    assert batch.indices.dtype == np.int64
    assert batch.indptr.dtype == np.int64


def test_map_batch_of_only_empty_or_unknown_items(vocab):
    batch = vocab.map_batch([[], ["nope"], []])
    assert batch.indices.tolist() == []
    assert batch.indptr.tolist() == [0, 0, 0, 0]
    assert batch.unknown.tolist() == [0, 1, 0]
    assert vocab.map_batch([]).indptr.tolist() == [0]


def test_map_batch_passes_weights_through(vocab):
    items = [["a", "zz"], [], ["d", "b"]]
    batch = vocab.map_batch(items, weights=[[0.5, 9.0], [], [2.0, 3.0]])
    assert batch.indices.tolist() == [0, 1, 3]
    np.testing.assert_array_equal(batch.weights, np.array([0.5, 3.0, 2.0], np.float32))
    csr = batch.to_csr(len(vocab)).toarray()
    np.testing.assert_array_equal(csr, [[0.5, 0, 0, 0], [0, 0, 0, 0], [0, 3.0, 0, 2.0]])


@pytest.mark.parametrize("weights", [[[1.0], [], [1.0, 1.0]], [[1.0, 1.0], [], [1.0, 1.0, 1.0]]])
def test_map_batch_rejects_weights_of_the_wrong_length(vocab, weights):
    with pytest.raises(ValueError, match="one value per keyword"):
        vocab.map_batch([["a", "b"], [], ["c", "d"]], weights=weights)


def test_map_batch_accepts_an_arrow_list_array(vocab):
    lists = [["a", "zz"], None, ["D", "b"], []]
    from_arrow = vocab.map_batch(pa.array(lists, type=pa.list_(pa.string())))
    from_python = vocab.map_batch([k or [] for k in lists])
    for name in ("indices", "weights", "indptr", "unknown"):
        np.testing.assert_array_equal(getattr(from_arrow, name), getattr(from_python, name))


# -- persistence -------------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip_through_json():
    vocab = Vocabulary.fit([*ITEMS, ["Straße", "東京"], ["strasse", "東京"]], min_df=2, max_size=5)
    data = json.loads(json.dumps(vocab.to_dict()))
    again = Vocabulary.from_dict(data)
    assert again.keywords == vocab.keywords
    assert again.document_frequency.dtype == np.int64
    np.testing.assert_array_equal(again.document_frequency, vocab.document_frequency)
    assert (again.n_documents, again.min_df, again.max_size) == (8, 2, 5)
    assert again.stats == vocab.stats
    items = [["a", "strasse"], ["東京", "x"], []]
    a, b = vocab.map_batch(items), again.map_batch(items)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.indptr, b.indptr)
    np.testing.assert_array_equal(a.unknown, b.unknown)
    assert json.loads(vocab.to_json()) == data


def test_keywords_and_frequencies_must_agree_in_length():
    with pytest.raises(ValueError, match="differ in length"):
        Vocabulary(keywords=["a", "b"], document_frequency=[1], n_documents=1)


@given(
    st.lists(
        st.lists(st.sampled_from(["a", "B", "c ", "Straße", "zz", "nope", ""]), max_size=4),
        min_size=1,
        max_size=40,
    )
)
def test_python_lists_and_arrow_arrays_map_alike(items):
    """Lists go through the cache of raw spellings, Arrow arrays through Arrow's kernels."""
    vocab = Vocabulary.from_keywords(
        [f"pad{i}" for i in range(30)] + ["a", "b", "c", "strasse", "zz"]
    )
    lists = vocab.map_batch(items)
    arrow = vocab.map_batch(pa.array(items, type=pa.list_(pa.string())))
    for got in (lists, arrow):
        assert got.indptr.tolist() == lists.indptr.tolist()
    assert arrow.indices.tolist() == lists.indices.tolist()
    assert arrow.unknown.tolist() == lists.unknown.tolist()
    one_by_one = [vocab.map_batch([item]) for item in items]  # the cache is warm by now
    assert lists.indices.tolist() == [i for b in one_by_one for i in b.indices.tolist()]
    flat = vocab.map_flat(
        [k for item in items for k in item], np.array([len(item) for item in items])
    )
    assert flat.indices.tolist() == lists.indices.tolist()
    assert flat.indptr.tolist() == lists.indptr.tolist()


def test_map_flat_checks_that_counts_add_up(vocab):
    with pytest.raises(ValueError, match="add up to 3, but there are 2"):
        vocab.map_flat(["a", "b"], np.array([1, 2]))


def test_raw_spelling_cache_is_bounded(vocab, monkeypatch):
    from topicproj.models.core import vocabulary

    monkeypatch.setattr(vocabulary, "RAW_CACHE_SIZE", 4)
    fresh = Vocabulary.from_keywords(vocab.keywords)
    made_up = [f"made-up {i}" for i in range(50)]
    batch = fresh.map_batch([[*made_up, "A"]])  # past the bound, still mapped correctly
    assert batch.unknown.tolist() == [50] and batch.indices.tolist() == [fresh.id("a")]
    assert len(fresh._raw_ids) == 4
    again = fresh.map_batch([["A", " a "]])  # spellings seen or not, the same id
    assert again.indices.tolist() == [fresh.id("a")] and again.unknown.tolist() == [0]


def test_repeated_keywords_merge_into_one_entry_with_summed_weights(vocab):
    batch = vocab.map_batch([["a", "A", " a ", "b"], ["b"]], weights=[[1.0, 2.0, 0.5, 1.0], [4.0]])
    assert batch.indices.tolist() == [0, 1, 1]
    np.testing.assert_array_equal(batch.weights, np.array([3.5, 1.0, 4.0], np.float32))
    assert batch.known.tolist() == [2, 1] and batch.unknown.tolist() == [0, 0]


def test_unknown_keywords_are_named_from_the_lookup_remembered_or_not(vocab, monkeypatch):
    from topicproj.models.core import vocabulary

    monkeypatch.setattr(vocabulary, "RAW_CACHE_SIZE", 6)
    fresh = Vocabulary.from_keywords(vocab.keywords)
    sent = ["A", " Zorblax ", "ÉTÉ", "   ", "zorblax", *[f"New {i}" for i in range(5)], "ÉTÉ"]
    ids = fresh.lookup(sent)
    assert (ids >= 0).tolist() == [k.strip().lower() in vocab.keywords for k in sent]
    assert ids[0] == fresh.id("a")
    expected = [normalize_keyword(k) for k, i in zip(sent, ids, strict=True) if i < 0]
    # Past the bound (6 spellings) the rest are normalised on the spot: the same forms.
    assert sorted(fresh.unknown_keywords(sent, ids)) == sorted(k for k in expected if k)
    assert (ids == -1).any() and (ids <= -2).any()  # both kinds were exercised
