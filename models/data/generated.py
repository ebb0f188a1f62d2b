"""What the generated catalogs (`synthetic_large`, `synthetic_short`) share: Zipf weights and
the packing of generated items into a `SyntheticCatalog` that the evaluation scores planted
topics on. Each generator keeps only what makes its shape: how topics and items are drawn."""

from __future__ import annotations

import numpy as np

from .catalog import Catalog
from .synthetic import SyntheticCatalog, SyntheticConfig


def zipf_weights(n: int, exponent: float, ranks: np.ndarray | None = None) -> np.ndarray:
    """Probabilities proportional to rank ** -exponent (ranks 1..n in order, or `ranks`)."""
    r = np.arange(1, n + 1, dtype=float) if ranks is None else ranks.astype(float)
    p = r**-exponent
    return p / p.sum()


def topic_names(n_topics: int) -> list[str]:
    """A generated topic's name, used as the items' genre: `topic017`."""
    return [f"topic{t:03d}" for t in range(n_topics)]


def pack(
    keywords: list[list[str]],
    item_topics: list[list[int]],
    topics: list[list[str]],
    source: str,
    config: SyntheticConfig,
) -> SyntheticCatalog:
    """Generated items as a catalog: ids `item000000`, the planted topics' names as genres.
    `config` records, in the themed generator's terms, the sizes the generators share."""
    names = topic_names(len(topics))
    ids = [f"item{i:06d}" for i in range(len(keywords))]
    genres = [[names[t] for t in planted] for planted in item_topics]
    catalog = Catalog(ids=ids, keywords=keywords, genres=genres, source=source)
    catalog.stats.rows = len(ids)
    return SyntheticCatalog(catalog, topics, names, item_topics, config)
