"""A seeded synthetic catalog with planted topics and known ground truth.

Each planted topic is a movie theme (`themes.THEMES`: science fiction is alien, space, robot,
dystopia...), its keywords a set of related words. An item mixes one to three topics, taking a few
keywords from each; some items carry only one or two keywords; a share of items also carry noise
keywords drawn from a Zipf popularity over the whole vocabulary, which includes stray keywords of
topics the item does not belong to. That last case is the one where a plain ReLU fires a topic on
a single shared keyword, and where "does a topic fire only when the overlap is real" can be
scored exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalog import Catalog
from .themes import THEMES, filler_keywords

THEME_NAMES = tuple(THEMES)


@dataclass(frozen=True)
class SyntheticConfig:
    n_items: int = 3000
    n_topics: int = 12  # the first n themes of THEMES
    keywords_per_topic: int = 15  # the first (most telling) keywords of each theme
    n_filler_keywords: int = 400  # keywords that belong to no topic
    noise_rate: float = 1 / 3  # share of items that carry noise keywords
    noise_keywords: tuple[int, int] = (1, 3)  # how many noise keywords such an item gets
    short_fraction: float = 0.2  # share of items with only one or two keywords
    zipf_exponent: float = 1.1
    seed: int = 0


@dataclass
class SyntheticCatalog:
    catalog: Catalog
    topic_keywords: list[list[str]]  # planted topic -> its keywords
    topic_names: list[str]  # planted topic -> its theme ("science fiction")
    item_topics: list[list[int]]  # item -> planted topics it was built from
    config: SyntheticConfig


# The demo model's catalog (`make run`): every theme, each with all its keywords.
DEMO = SyntheticConfig(
    n_items=4000, n_topics=len(THEMES), keywords_per_topic=min(map(len, THEMES.values()))
)


def make_synthetic_catalog(
    config: SyntheticConfig | None = None, **overrides: object
) -> SyntheticCatalog:
    """Build the catalog. Same config and seed, same catalog, on any machine."""
    cfg = config or SyntheticConfig()
    if overrides:
        cfg = SyntheticConfig(**{**cfg.__dict__, **overrides})  # type: ignore[arg-type]
    # Items mix up to three topics and draw up to six keywords from each, without repeats.
    if cfg.n_items < 1 or cfg.n_topics < 3 or cfg.keywords_per_topic < 6:
        raise ValueError("need n_items >= 1, n_topics >= 3 and keywords_per_topic >= 6")
    longest = min(len(words) for words in THEMES.values())
    if cfg.n_topics > len(THEMES) or cfg.keywords_per_topic > longest:
        raise ValueError(
            f"the synthetic catalog has {len(THEMES)} themes of {longest} keywords; asked for "
            f"{cfg.n_topics} of {cfg.keywords_per_topic}"
        )
    rng = np.random.default_rng(cfg.seed)
    names = list(THEME_NAMES[: cfg.n_topics])
    topics = [list(THEMES[name][: cfg.keywords_per_topic]) for name in names]
    filler = filler_keywords(cfg.n_filler_keywords)
    everything = [k for t in topics for k in t] + filler
    # Zipf popularity over a shuffled vocabulary, so stray topic keywords are among the noise.
    ranks = rng.permutation(len(everything)) + 1
    noise_p = ranks.astype(float) ** -cfg.zipf_exponent
    noise_p /= noise_p.sum()
    # Within a topic, keywords are not equally common either.
    in_topic_p = np.arange(1, cfg.keywords_per_topic + 1, dtype=float) ** -0.7
    in_topic_p /= in_topic_p.sum()

    ids, keywords, genres, item_topics = [], [], [], []
    for i in range(cfg.n_items):
        short = rng.random() < cfg.short_fraction
        if short:
            planted = [int(rng.integers(cfg.n_topics))]
            n_kw = int(rng.integers(1, 3))
            chosen = rng.choice(cfg.keywords_per_topic, size=n_kw, replace=False, p=in_topic_p)
            kws = [topics[planted[0]][c] for c in chosen]
        else:
            n_mix = int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
            planted = sorted(int(t) for t in rng.choice(cfg.n_topics, size=n_mix, replace=False))
            kws = []
            for t in planted:
                n_kw = int(rng.integers(3, 7))
                chosen = rng.choice(cfg.keywords_per_topic, size=n_kw, replace=False, p=in_topic_p)
                kws.extend(topics[t][c] for c in chosen)
        if not short and rng.random() < cfg.noise_rate:
            lo, hi = cfg.noise_keywords
            n_noise = int(rng.integers(lo, hi + 1))
            kws.extend(everything[j] for j in rng.choice(len(everything), size=n_noise, p=noise_p))
        kws = list(dict.fromkeys(kws))  # a bag, without repeats
        ids.append(f"item{i:06d}")
        keywords.append(kws)
        genres.append([names[t] for t in planted])
        item_topics.append(planted)
    catalog = Catalog(ids=ids, keywords=keywords, genres=genres, source="synthetic")
    catalog.stats.rows = len(ids)
    return SyntheticCatalog(catalog, topics, names, item_topics, cfg)
