"""The evaluation harness end to end on small data, and its report format."""

from __future__ import annotations

import json

import pytest

from lab.evaluation import evaluate, summarise, write_report
from topicproj.models.data.catalog import read_catalog

from ..models.factories import TMDB, small_synthetic

REQUIRED = (
    "recall_at_10",
    "mrr",
    "npmi",
    "diversity",
    "zero_fraction",
    "active_topics",
    "dead_topics",
    "train_seconds",
    "items_per_second",
)


def test_report_on_planted_topics(tmp_path):
    s = small_synthetic(n_items=400)
    report = evaluate(
        s.catalog,
        n_topics=5,
        activations=["relu", "overlap"],
        seeds=[0, 1],
        min_df=2,
        planted_keywords=s.topic_keywords,
        item_topics=s.item_topics,
        progress=False,
        model_params={"max_epochs": 10},
    )
    by_name = {m["name"]: m for m in report["models"]}
    assert {
        "projector (relu)",
        "projector (overlap)",
        "scikit-learn NMF (Frobenius)",
        "scikit-learn LDA (batch)",
        "keyword popularity (no model)",
    } <= set(by_name)
    for name in ("projector (relu)", "projector (overlap)"):
        m = by_name[name]
        assert m["topics"] == 5 and m["activation"] == name.split("(")[1][:-1]
        for key in (*REQUIRED, "genre_map", "topic_f1"):
            assert set(m[key]) == {"mean", "std"}, key
        assert 0 <= m["topic_f1"]["mean"] <= 1
    assert "activation" not in by_name["scikit-learn NMF (Frobenius)"]
    popularity = by_name["keyword popularity (no model)"]
    assert set(popularity) == {"name", "recall_at_10", "mrr"}  # nothing it cannot measure
    # the learned model beats ranking keywords by popularity
    assert (
        by_name["projector (overlap)"]["recall_at_10"]["mean"] > popularity["recall_at_10"]["mean"]
    )
    out = write_report(report, tmp_path / "r", command="topicproj evaluate ...")
    assert json.loads((out / "report.json").read_text())["models"] == report["models"]
    md = (out / "report.md").read_text()
    assert "| projector (overlap) |" in md and "topicproj evaluate" in md


def test_summaries_are_the_mean_and_sample_std_over_seeds():
    runs = [{"recall_at_10": 0.25, "mrr": 0.5}, {"recall_at_10": 0.75, "mrr": 0.5}]
    summary = summarise(runs)
    assert summary["recall_at_10"] == {"mean": 0.5, "std": pytest.approx(0.125**0.5)}  # ddof=1
    assert summary["mrr"] == {"mean": 0.5, "std": 0.0}
    assert summarise(runs[:1])["recall_at_10"] == {"mean": 0.25, "std": 0.0}  # one seed: no spread


def test_metrics_without_genres_are_left_out():
    s = small_synthetic(n_items=300)
    s.catalog.genres = None
    report = evaluate(
        s.catalog,
        n_topics=4,
        activations=["relu"],
        seeds=[0],
        min_df=2,
        sklearn_baselines=False,
        progress=False,
        model_params={"max_epochs": 3},
    )
    for m in report["models"]:
        assert "genre_map" not in m and "topic_f1" not in m


@pytest.mark.skipif(not TMDB.exists(), reason="TMDB data not present beside the project")
def test_tmdb_projection_beats_popularity_and_is_sparse():
    catalog = read_catalog(TMDB)
    report = evaluate(
        catalog,
        n_topics=20,
        activations=["overlap"],
        seeds=[0],
        min_df=3,
        sklearn_baselines=False,
        progress=False,
        model_params={"max_epochs": 15},
    )
    by_name = {m["name"]: m for m in report["models"]}
    assert report["data"]["usable_items"] == 4308  # movies with a keyword on >= 3 movies
    ours = by_name["projector (overlap)"]
    assert (
        ours["recall_at_10"]["mean"]
        > by_name["keyword popularity (no model)"]["recall_at_10"]["mean"]
    )
    assert ours["zero_fraction"]["mean"] > 0.2
