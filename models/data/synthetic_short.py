"""A seeded catalog of short items: few keywords each, a large vocabulary, overlapping topics.

`synthetic_large` has long items (one to three topics, 2 to 8 keywords from each) and cleanly
separated topics. A real catalog can look quite different: tens of thousands of items, a median of
4 keywords and a long tail, a vocabulary several times TMDB's, topics that share keywords, and no
genres. On such a catalog an L1 weight tuned on TMDB shuts too many gates (most items are short,
so one shared keyword is a large share of the item). This generator makes that shape, with
planted topics so that active-topic F1 can still be scored:

- `n_topics` planted topics of `keywords_per_topic` keywords, Zipf-popular within the topic; a
  share `shared_share` of each topic's keywords are drawn from a pool shared by all topics (so a
  keyword can belong to several topics: the topics overlap);
- an item's length is log-normal, median `median_keywords`, 90th percentile
  `p90_keywords`, at least 1; it mixes one to three topics (weights `mix`) and spreads its
  keywords over them;
- each keyword is, with probability `noise_share`, a noise keyword instead: Zipf-popular over
  `n_tail_keywords` keywords of no topic (the long tail of a large vocabulary).

`summary` gives the statistics `topicproj study --equal-sparsity short` prints next to TMDB's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .generated import pack, zipf_weights
from .synthetic import SyntheticCatalog, SyntheticConfig


@dataclass(frozen=True)
class ShortSyntheticConfig:
    n_items: int = 32_000
    n_topics: int = 80
    keywords_per_topic: int = 80
    shared_share: float = 0.5  # share of a topic's keywords taken from the shared pool
    n_shared_keywords: int = 1_000  # the pool topics share keywords from
    n_tail_keywords: int = 8_000  # keywords of no topic
    noise_share: float = 0.45  # chance that a keyword of an item is a noise keyword
    median_keywords: float = 4.0
    p90_keywords: float = 11.0
    mix: tuple[float, float, float] = (0.55, 0.3, 0.15)  # items of one, two, three topics
    in_topic_exponent: float = 0.8  # Zipf exponent of keyword popularity within a topic
    tail_exponent: float = 0.9  # Zipf exponent of the noise keywords' popularity
    seed: int = 0

    def validate(self) -> None:
        if self.n_items < 1 or self.n_topics < 3 or self.keywords_per_topic < 4:
            raise ValueError("need n_items >= 1, n_topics >= 3, keywords_per_topic >= 4")
        if not (0 <= self.shared_share < 1 and 0 <= self.noise_share < 1):
            raise ValueError("shared_share and noise_share are shares, in [0, 1)")
        if not 1 <= self.median_keywords < self.p90_keywords:
            raise ValueError("need 1 <= median_keywords < p90_keywords")
        if abs(sum(self.mix) - 1.0) > 1e-9 or len(self.mix) != 3:
            raise ValueError("mix: the shares of items of one, two and three topics, summing to 1")


# For tests and quick runs.
TINY = ShortSyntheticConfig(
    n_items=2_000, n_topics=10, keywords_per_topic=20, n_shared_keywords=40, n_tail_keywords=800
)

_Z90 = 1.2815515655446004  # the standard normal's 90th percentile


def make_short_synthetic_catalog(
    config: ShortSyntheticConfig | None = None, **overrides: object
) -> SyntheticCatalog:
    """Build the catalog (a few seconds for the default 20,000 items)."""
    cfg = replace(config or ShortSyntheticConfig(), **overrides)  # type: ignore[arg-type]
    cfg.validate()
    rng = np.random.default_rng(cfg.seed)
    K, P = cfg.n_topics, cfg.keywords_per_topic
    n_shared = round(P * cfg.shared_share)
    pool = [f"shared{j:04d}" for j in range(cfg.n_shared_keywords)]
    topics = []
    for t in range(K):
        own = [f"t{t:03d}_k{j:02d}" for j in range(P - n_shared)]
        borrowed = rng.choice(len(pool), size=n_shared, replace=False)
        kws = own + [pool[j] for j in borrowed]
        topics.append([kws[j] for j in rng.permutation(P)])  # shared ones at any popularity
    tail = np.array([f"tail{j:05d}" for j in range(cfg.n_tail_keywords)], dtype=object)
    tail_p = zipf_weights(len(tail), cfg.tail_exponent)
    in_topic_p = zipf_weights(P, cfg.in_topic_exponent)
    sigma = np.log(cfg.p90_keywords / cfg.median_keywords) / _Z90
    lengths = np.maximum(
        1, np.rint(np.exp(rng.normal(np.log(cfg.median_keywords), sigma, cfg.n_items)))
    ).astype(int)

    keywords, item_topics = [], []
    for length in lengths:
        n_mix = min(int(rng.choice(3, p=cfg.mix)) + 1, int(length))
        planted = sorted(int(t) for t in rng.choice(K, size=n_mix, replace=False))
        noise = rng.random(length) < cfg.noise_share
        noise[:n_mix] = False  # every planted topic contributes at least one keyword
        owner = np.concatenate([np.arange(n_mix), rng.integers(0, n_mix, length - n_mix)])
        kws = []
        for j in range(length):
            if noise[j]:
                kws.append(str(tail[rng.choice(len(tail), p=tail_p)]))
            else:
                kws.append(topics[planted[owner[j]]][rng.choice(P, p=in_topic_p)])
        keywords.append(list(dict.fromkeys(kws)))  # a bag, without repeats
        item_topics.append(planted)
    shared = SyntheticConfig(
        n_items=cfg.n_items,
        n_topics=K,
        keywords_per_topic=P,
        n_filler_keywords=cfg.n_tail_keywords,
        noise_rate=cfg.noise_share,
        short_fraction=0.0,
        zipf_exponent=cfg.tail_exponent,
        seed=cfg.seed,
    )
    return pack(keywords, item_topics, topics, "synthetic-short", shared)


def summary(keywords: Sequence[Sequence[str]], min_df: int = 3) -> dict[str, float]:
    """Items with a keyword, keywords per such item (mean, median, 90th percentile), distinct
    keywords, and keywords on at least `min_df` items."""
    lengths = np.array([len(set(k)) for k in keywords if k])
    df = Counter(k for kws in keywords for k in set(kws))
    return {
        "items": len(lengths),
        "mean_keywords": float(lengths.mean()),
        "median_keywords": float(np.median(lengths)),
        "p90_keywords": float(np.percentile(lengths, 90)),
        "distinct_keywords": len(df),
        f"keywords_df_ge_{min_df}": sum(1 for c in df.values() if c >= min_df),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the default catalog's statistics, and beside them those of a catalog file (TMDB):

        python -m topicproj.models.data.synthetic_short \\
            --compare ../shared/data/tmdb_5000_movies.csv.zip
    """
    import argparse

    parser = argparse.ArgumentParser(description="the short-item catalog's statistics")
    parser.add_argument("--compare", help="a catalog file to print beside it (TMDB)")
    args = parser.parse_args(argv)
    columns = {"short-item catalog": summary(make_short_synthetic_catalog().catalog.keywords)}
    if args.compare:
        from .catalog import read_catalog

        columns[args.compare.rsplit("/", 1)[-1]] = summary(read_catalog(args.compare).keywords)
    names = list(columns)
    print("| statistic | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for key in columns[names[0]]:
        print(f"| {key} | " + " | ".join(f"{columns[n][key]:,.1f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
