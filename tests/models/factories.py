"""Small factories shared by the model tests."""

from __future__ import annotations

from pathlib import Path

from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.synthetic import SyntheticCatalog, make_synthetic_catalog

TMDB = Path(__file__).resolve().parents[3] / "shared" / "data" / "tmdb_5000_movies.csv.zip"


def small_synthetic(n_items: int = 300, seed: int = 0) -> SyntheticCatalog:
    return make_synthetic_catalog(
        n_items=n_items, n_topics=5, keywords_per_topic=8, n_filler_keywords=40, seed=seed
    )


def saved_small_model(directory: Path) -> TopicModel:
    """A 5-topic model of the small synthetic catalog, saved under `directory` and loaded back
    (so it has a version, as a served or offline model does)."""
    s = small_synthetic(n_items=300)
    fitted = TopicModel(5, min_df=2, max_epochs=5, device="cpu").fit(s.catalog.keywords)
    return TopicModel.load(fitted.save(directory / "model"), device="cpu")
