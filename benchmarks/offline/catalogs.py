"""The benchmark's catalogs (TMDB as Parquet, a synthetic Zipf catalog of any size) and the
cached models fitted on them.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning

import topicproj.models.training.loop as training_loop
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.catalog import read_catalog
from topicproj.models.errors import ModelDirectoryError

ROOT = Path(__file__).resolve().parents[2]
TMDB = ROOT.parent / "shared" / "data" / "tmdb_5000_movies.csv.zip"
RUNS = ROOT / "runs"
TMDB_MODEL = RUNS / "bench-offline-tmdb50"
SYN_MODEL = RUNS / "bench-offline-syn256"

TMDB_TOPICS = 50
SYN_TOPICS = 256
SYN_KEYWORDS = 20_000
SYN_MAX_KEYWORDS = 15  # keywords per item are uniform in 1..15 before duplicates are dropped
ZIPF_EXPONENT = 1.0  # popularity of the keyword of rank r is proportional to r ** -exponent
ROW_GROUP = 65_536
SEED = 0
SAMPLE_ITEMS = 20_000  # the synthetic models are fitted on this many items
COVERAGE_PER_ITEM = 10
# Only projection speed is measured, so the synthetic models need not converge: 10 NMF
# iterations instead of the 300 of `TopicModel.fit`'s initialisation (with those, the fit took
# 6.4 minutes at 256 topics x 20,000 keywords on 2 cores; with 10, 80 s) and 3 training epochs.
QUICK_NMF_ITERATIONS = 10
SYN_EPOCHS = 3


# -- data -------------------------------------------------------------------------------------


def labels(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """`prefix` + zero-padded numbers as an Arrow string array, without a Python loop."""
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def popularity_cdf(n_keywords: int) -> np.ndarray:
    weights = np.arange(1, n_keywords + 1, dtype=np.float64) ** -ZIPF_EXPONENT
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def synthetic_items(
    rng: np.random.Generator, n: int, first_id: int, cdf: np.ndarray, names: pa.Array
) -> pa.Table:
    """`n` items (id, keywords list<string>) with Zipf-popular keywords, all vectorised."""
    lengths = rng.integers(1, SYN_MAX_KEYWORDS + 1, size=n)
    rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
    drawn = np.minimum(np.searchsorted(cdf, rng.random(len(rows)), side="right"), len(cdf) - 1)
    # A keyword drawn twice for one item is listed once, as a real catalog lists it.
    rows, keywords = np.divmod(np.unique(rows * len(cdf) + drawn), len(cdf))
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    lists = pa.ListArray.from_arrays(pa.array(offsets), names.take(pa.array(keywords)))
    return pa.table({"id": labels("syn", np.arange(first_id, first_id + n), 7), "keywords": lists})


@dataclass
class Dataset:
    name: str
    path: Path
    items: int
    keyword_occurrences: int
    description: str


def write_synthetic(path: Path, n_items: int) -> Dataset:
    """The synthetic catalog as Parquet in row groups; each group has its own seeded stream."""
    cdf = popularity_cdf(SYN_KEYWORDS)
    names = labels("kw", np.arange(SYN_KEYWORDS), 6)
    occurrences = 0
    schema = pa.schema([("id", pa.string()), ("keywords", pa.list_(pa.string()))])
    with pq.ParquetWriter(path, schema) as writer:
        for group, start in enumerate(range(0, n_items, ROW_GROUP)):
            n = min(ROW_GROUP, n_items - start)
            table = synthetic_items(np.random.default_rng([SEED, group]), n, start, cdf, names)
            occurrences += len(table.column("keywords").combine_chunks().flatten())
            writer.write_table(table, row_group_size=ROW_GROUP)
    groups = math.ceil(n_items / ROW_GROUP)
    return Dataset(
        "synthetic",
        path,
        n_items,
        occurrences,
        f"{n_items:,} items, 1–{SYN_MAX_KEYWORDS} distinct keywords each "
        f"(mean {occurrences / n_items:.1f}) drawn with Zipf popularity (s = {ZIPF_EXPONENT:g}) "
        f"over {SYN_KEYWORDS:,} keywords, {groups} row groups of up to {ROW_GROUP:,}",
    )


def head_parquet(source: Path, path: Path, n_items: int) -> None:
    """The first `n_items` rows of `source`, streamed, as another Parquet file."""
    pf = pq.ParquetFile(source)
    left = n_items
    with pq.ParquetWriter(path, pf.schema_arrow) as writer:
        for batch in pf.iter_batches(batch_size=ROW_GROUP):
            if left <= 0:
                break
            writer.write_batch(batch.slice(0, left))
            left -= min(left, batch.num_rows)


def synthetic_sample() -> list[list[str]]:
    """The fitting sample: fresh synthetic items plus items that cover every keyword.

    At Zipf s = 1 about a fifth of the 20,000 keywords (4,273) occur in none of 20,000 items;
    the coverage items (10 consecutive keywords each) put all of them in the vocabulary, so that
    the model knows every keyword of the catalog, as a model fitted on the whole catalog would.
    """
    names = labels("kw", np.arange(SYN_KEYWORDS), 6)
    rng = np.random.default_rng([SEED, 1 << 20])  # a stream no row group of the catalog uses
    sample = synthetic_items(rng, SAMPLE_ITEMS, 0, popularity_cdf(SYN_KEYWORDS), names)
    ends = np.arange(0, SYN_KEYWORDS + COVERAGE_PER_ITEM, COVERAGE_PER_ITEM)
    offsets = np.minimum(ends, SYN_KEYWORDS).astype(np.int32)
    coverage = pa.ListArray.from_arrays(pa.array(offsets), names)
    return sample.column("keywords").to_pylist() + coverage.to_pylist()


def tmdb_parquet(path: Path) -> tuple[Dataset, list[list[str]]]:
    catalog = read_catalog(TMDB)
    table = pa.table(
        {
            "id": pa.array(catalog.ids, type=pa.string()),
            "keywords": pa.array(catalog.keywords, type=pa.list_(pa.string())),
        }
    )
    pq.write_table(table, path)
    n = len(catalog)
    occurrences = sum(map(len, catalog.keywords))
    with_keywords = sum(1 for k in catalog.keywords if k)
    dataset = Dataset(
        "TMDB",
        path,
        n,
        occurrences,
        f"`{os.path.relpath(TMDB, ROOT)}` converted to Parquet: {n:,} items "
        f"({with_keywords:,} with keywords), {occurrences / n:.1f} keywords each",
    )
    return dataset, catalog.keywords


# -- models -----------------------------------------------------------------------------------


def cached_model(path: Path, fit: Callable[[], TopicModel]) -> tuple[TopicModel, bool]:
    """The model under `path`, fitted and saved first if missing or damaged."""
    try:
        return TopicModel.load(path, device="cpu"), False
    except ModelDirectoryError as e:
        if path.exists():
            print(f"refitting {path}: {e}", file=sys.stderr)
    print(f"fitting {path} ...", file=sys.stderr, flush=True)
    fit().save(path, overwrite=True)  # written to a temp dir and renamed: never half a model
    return TopicModel.load(path, device="cpu"), True


def quick_nmf(n_topics: int, seed: int) -> NMF:
    """An NMF with scikit-learn's default settings except that `fit` stops after a few
    iterations; `transform` then runs with the default max_iter again.

    A full fit of 256 topics takes over 3 minutes here; the transform rate after it was within
    5% of the rate after 10 iterations (4,480 against 4,680 items/s), so the shortcut changes
    what the baseline costs to prepare, not what it costs to run.
    """
    return NMF(n_topics, init="nndsvda", max_iter=QUICK_NMF_ITERATIONS, random_state=seed)


def _quick_initial_topics(X: sp.csr_matrix, n_topics: int, init: str, seed: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        H = quick_nmf(n_topics, seed).fit(X).components_
    peak = np.maximum(H.max(axis=1, keepdims=True), 1e-12)  # each topic's max 1, as fit does
    return (H / peak).astype(np.float32)


def fit_synthetic_model(sample: list[list[str]]) -> TopicModel:
    model = TopicModel(
        SYN_TOPICS, min_df=1, max_vocabulary=None, max_epochs=SYN_EPOCHS, device="cpu"
    )
    # `fit` imports `initial_topics` from the training loop at call time; everything else is the
    # real fit.
    with mock.patch.object(training_loop, "initial_topics", _quick_initial_topics):
        return model.fit(sample)
