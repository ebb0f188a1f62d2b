"""A large seeded catalog with planted topics and a long tail of stray keywords.

The themed catalog of `synthetic.py` has at most a few dozen topics of a few dozen keywords, a few
thousand items and a few hundred filler keywords: too small to show how settings transfer to a
catalog of tens of thousands of items. This one generates its vocabulary (`t017_k03` is the fourth
keyword of planted topic 17, `tail01234` a keyword of no topic), so it scales to any size:

- `n_topics` planted topics of `keywords_per_topic` keywords each, keywords within a topic
  Zipf-distributed (a topic has a few common keywords and many rare ones), so the topic side of
  the overlap is large, as on a real catalog;
- an item mixes one to three topics and takes 2 to `max_keywords_per_topic` keywords from each;
  a share `short_fraction` has one or two keywords of a single topic;
- a share `noise_rate` of the other items carries stray keywords, their number geometric with
  mean `mean_stray`, drawn from a Zipf popularity over the whole vocabulary: mostly the
  `n_tail_keywords` keywords of no topic (the long tail), sometimes a keyword of a topic the item
  does not belong to, the case where a ReLU fires a topic on one shared keyword.

Same config, same catalog, on any machine. The result is a `SyntheticCatalog`, so the evaluation
scores planted topics on it as on the small one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .generated import pack, zipf_weights
from .synthetic import SyntheticCatalog, SyntheticConfig


@dataclass(frozen=True)
class LargeSyntheticConfig:
    n_items: int = 30_000
    n_topics: int = 100
    keywords_per_topic: int = 40
    n_tail_keywords: int = 6_000  # keywords of no topic: the long tail
    noise_rate: float = 0.5  # share of (non-short) items with stray keywords
    mean_stray: float = 2.0  # mean number of stray keywords on such an item (geometric)
    short_fraction: float = 0.2  # share of items with one or two keywords of one topic
    max_keywords_per_topic: int = 8  # an item takes 2..this many keywords of each topic
    in_topic_exponent: float = 1.0  # Zipf exponent of keyword popularity within a topic
    zipf_exponent: float = 1.05  # Zipf exponent of the stray keywords' popularity
    seed: int = 0

    def validate(self) -> None:
        if self.n_items < 1 or self.n_topics < 3:
            raise ValueError("need n_items >= 1 and n_topics >= 3")
        if self.keywords_per_topic < self.max_keywords_per_topic or self.max_keywords_per_topic < 2:
            raise ValueError("need keywords_per_topic >= max_keywords_per_topic >= 2")
        if not (0 <= self.noise_rate <= 1 and 0 <= self.short_fraction <= 1):
            raise ValueError("noise_rate and short_fraction are shares, in [0, 1]")
        if self.n_tail_keywords < 0 or self.mean_stray < 1:
            raise ValueError("need n_tail_keywords >= 0 and mean_stray >= 1")


# Sizes for tests and quick runs; the default has tens of thousands of items.
SMALL = LargeSyntheticConfig(n_items=2_000, n_topics=10, keywords_per_topic=20, n_tail_keywords=500)
MEDIUM = LargeSyntheticConfig(
    n_items=12_000, n_topics=50, keywords_per_topic=30, n_tail_keywords=3_000
)


def make_large_synthetic_catalog(
    config: LargeSyntheticConfig | None = None, **overrides: object
) -> SyntheticCatalog:
    """Build the catalog (about 10 s for the default 30,000 items)."""
    cfg = replace(config or LargeSyntheticConfig(), **overrides)  # type: ignore[arg-type]
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    K, P = cfg.n_topics, cfg.keywords_per_topic
    topics = [[f"t{t:03d}_k{j:02d}" for j in range(P)] for t in range(K)]
    tail = [f"tail{j:05d}" for j in range(cfg.n_tail_keywords)]
    everything = np.array([k for t in topics for k in t] + tail, dtype=object)
    # Stray keywords: Zipf over a shuffled vocabulary, so some are topic keywords.
    noise_p = zipf_weights(len(everything), cfg.zipf_exponent, rng.permutation(len(everything)) + 1)
    noise_cdf = np.cumsum(noise_p)
    in_topic_p = zipf_weights(P, cfg.in_topic_exponent)

    keywords, item_topics = [], []
    for _ in range(cfg.n_items):
        if rng.random() < cfg.short_fraction:
            planted = [int(rng.integers(K))]
            chosen = rng.choice(P, size=int(rng.integers(1, 3)), replace=False, p=in_topic_p)
            kws = [topics[planted[0]][c] for c in chosen]
        else:
            n_mix = int(rng.choice([1, 2, 3], p=[0.5, 0.35, 0.15]))
            planted = sorted(int(t) for t in rng.choice(K, size=n_mix, replace=False))
            kws = []
            for t in planted:
                n_kw = int(rng.integers(2, cfg.max_keywords_per_topic + 1))
                chosen = rng.choice(P, size=n_kw, replace=False, p=in_topic_p)
                kws.extend(topics[t][c] for c in chosen)
            if rng.random() < cfg.noise_rate:
                n_stray = int(rng.geometric(1.0 / cfg.mean_stray))
                picks = np.searchsorted(noise_cdf, rng.random(n_stray) * noise_cdf[-1])
                kws.extend(everything[np.minimum(picks, len(everything) - 1)].tolist())
        keywords.append(list(dict.fromkeys(kws)))  # a bag, without repeats
        item_topics.append(planted)
    # SyntheticCatalog's config field describes the themed generator; record the sizes we share.
    shared = SyntheticConfig(
        n_items=cfg.n_items,
        n_topics=K,
        keywords_per_topic=P,
        n_filler_keywords=cfg.n_tail_keywords,
        noise_rate=cfg.noise_rate,
        short_fraction=cfg.short_fraction,
        zipf_exponent=cfg.zipf_exponent,
        seed=cfg.seed,
    )
    return pack(keywords, item_topics, topics, "synthetic-large", shared)
