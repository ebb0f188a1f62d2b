"""Small factories shared by the model tests."""

from __future__ import annotations

from pathlib import Path

from models.data.synthetic import SyntheticCatalog, make_synthetic_catalog

TMDB = Path(__file__).resolve().parents[3] / "shared" / "data" / "tmdb_5000_movies.csv.zip"


def small_synthetic(n_items: int = 300, seed: int = 0) -> SyntheticCatalog:
    return make_synthetic_catalog(
        n_items=n_items, n_topics=5, keywords_per_topic=8, n_filler_keywords=40, seed=seed
    )
