"""The three paths timed on the same items (local engine, scikit-learn pipeline, raw kernel),
and each stage of the local engine alone.
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import torch
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import MultiLabelBinarizer

from benchmarks.offline.catalogs import (
    QUICK_NMF_ITERATIONS,
    SEED,
    SYN_MODEL,
    SYN_TOPICS,
    TMDB_MODEL,
    TMDB_TOPICS,
    Dataset,
    cached_model,
    fit_synthetic_model,
    quick_nmf,
    synthetic_sample,
    tmdb_parquet,
    write_synthetic,
)
from topicproj.models.core.sparse import SparseBatch
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.arrow_catalog import ArrowBatch, iter_catalog_arrow
from topicproj.models.offline.projection import parquet_writer, project_catalog

SKLEARN_SUBSET = 20_000  # NMF.transform runs at a few thousand items/s: time a subset
MIN_SECONDS = 2.0  # repeat a short measurement until it has run this long, for a stable rate
MIN_STAGE_SECONDS = 0.5
MIN_PASSES = 2  # even a long pass is run twice, so that one disturbed pass does not decide


# -- timing -----------------------------------------------------------------------------------


@dataclass
class Timing:
    """Seconds of each pass over the same items; the fastest pass is the one reported.

    The fastest, not the mean or median: on a machine shared with other jobs, slower passes
    measure the other jobs as much as the code, and every path is treated the same way.
    """

    items: int
    passes: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return min(self.passes) if self.passes else math.nan

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.passes and self.seconds > 0 else math.nan


# -- the three paths --------------------------------------------------------------------------


@dataclass
class DatasetResult:
    dataset: Dataset
    model_path: Path
    model: TopicModel
    fitted_now: bool
    sklearn_note: str
    local: Timing
    sklearn: Timing
    kernel: Timing
    sklearn_split: dict[str, float]  # seconds of the fastest pass: read, vectorise, transform
    stages: dict[str, Timing]
    zeros: float  # share of exactly-zero activations in the first batch


def read_batches(path: Path, batch_size: int) -> tuple[list[ArrowBatch], float]:
    start = time.perf_counter()
    batches = list(iter_catalog_arrow(path, batch_size=batch_size))
    return batches, time.perf_counter() - start


def map_batches(model: TopicModel, batches: list[ArrowBatch]) -> tuple[list[SparseBatch], float]:
    start = time.perf_counter()
    mapped = [model.vocabulary_.map_batch(b.keywords) for b in batches]
    return mapped, time.perf_counter() - start


@torch.no_grad()
def kernel_pass(model: TopicModel, inputs: list[tuple[torch.Tensor, ...]]) -> float:
    start = time.perf_counter()
    for indices, offsets, weights in inputs:
        model.projector_(indices, offsets, weights)
    return time.perf_counter() - start


def write_pass(projected: Path, target: Path, batch_size: int) -> float:
    """Seconds spent writing the engine's own output again, batch by batch (reading not timed)."""
    pf = pq.ParquetFile(projected)
    writer = parquet_writer(target, pf.schema_arrow)  # the engine's own writer options
    seconds = 0.0
    try:
        for batch in pf.iter_batches(batch_size=batch_size):
            start = time.perf_counter()
            writer.write_batch(batch)
            seconds += time.perf_counter() - start
    finally:
        start = time.perf_counter()
        writer.close()  # writes the footer
    return seconds + time.perf_counter() - start


def local_pass(model: TopicModel, path: Path, output: Path, batch_size: int) -> float:
    start = time.perf_counter()
    project_catalog(model, [path], output, batch_size=batch_size, progress=False)
    return time.perf_counter() - start


def sklearn_pass(
    path: Path, n_items: int, mlb: MultiLabelBinarizer, nmf: NMF, split: list[list[float]]
) -> float:
    """Read ids and keywords into Python lists, vectorise, transform; the seconds of all three."""
    t0 = time.perf_counter()
    batch = next(pq.ParquetFile(path).iter_batches(batch_size=n_items, columns=["id", "keywords"]))
    ids = batch.column("id").to_pylist()
    keywords = batch.column("keywords").to_pylist()
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        # Keywords outside the vocabulary are dropped, as the engine drops them; the warning
        # naming them all is still built, as it is for a user.
        warnings.simplefilter("ignore", UserWarning)
        X = mlb.transform(keywords)
    t2 = time.perf_counter()
    W = nmf.transform(X)
    t3 = time.perf_counter()
    assert W.shape == (len(ids), nmf.n_components_)
    split.append([t1 - t0, t2 - t1, t3 - t2])
    return t3 - t0


def measure(
    dataset: Dataset,
    model: TopicModel,
    nmf: NMF,
    sklearn_items: int,
    batch_size: int,
    tmp: Path,
) -> tuple[Timing, Timing, Timing, dict[str, float], dict[str, Timing], float]:
    """Every path and stage over the same items, their passes interleaved in rounds.

    Interleaving puts the passes of all paths side by side in time, so a burst of load from
    another job slows all of them, not one path's whole measurement, and the ratios hold up.
    """
    n = dataset.items
    output = tmp / f"{dataset.name}-projected.parquet"
    rewritten = tmp / f"{dataset.name}-rewritten.parquet"
    batches, _ = read_batches(dataset.path, batch_size)
    mapped, _ = map_batches(model, batches)
    inputs = [m.torch_inputs("cpu") for m in mapped]
    del mapped
    with torch.no_grad():
        first = model.projector_(*inputs[0])  # also fills the projector's topic-stats cache
    zeros = float((first == 0).float().mean())
    mlb = MultiLabelBinarizer(classes=model.vocabulary_.keywords, sparse_output=True).fit([])
    split: list[list[float]] = []
    # name: (items per pass, one pass, seconds to run at least); in the order of a round, the
    # local engine before the write stage, which rewrites the engine's output.
    paths: dict[str, tuple[int, Callable[[], float], float]] = {
        "kernel": (n, lambda: kernel_pass(model, inputs), MIN_SECONDS),
        "sklearn": (
            sklearn_items,
            lambda: sklearn_pass(dataset.path, sklearn_items, mlb, nmf, split),
            MIN_SECONDS,
        ),
        "local": (
            n,
            lambda: local_pass(model, dataset.path, output, batch_size),
            MIN_SECONDS,
        ),
        "read": (n, lambda: read_batches(dataset.path, batch_size)[1], MIN_STAGE_SECONDS),
        "map": (n, lambda: map_batches(model, batches)[1], MIN_STAGE_SECONDS),
        "write": (n, lambda: write_pass(output, rewritten, batch_size), MIN_STAGE_SECONDS),
    }
    timings = {name: Timing(items) for name, (items, _, _) in paths.items()}

    def wanted(name: str) -> bool:
        passes = timings[name].passes
        return len(passes) < MIN_PASSES or sum(passes) < paths[name][2]

    rounds = 0
    while any(wanted(name) for name in paths):
        rounds += 1
        todo = [name for name in paths if wanted(name)]
        if rounds <= MIN_PASSES or rounds % 50 == 0:
            print(f"{dataset.name}: round {rounds} ({', '.join(todo)})", file=sys.stderr)
        for name in todo:
            timings[name].passes.append(paths[name][1]())
    inputs.clear()
    output.unlink()
    rewritten.unlink()
    sk = timings.pop("sklearn")
    fastest = split[sk.passes.index(sk.seconds)]
    sklearn_split = dict(zip(("read", "vectorise", "transform"), fastest, strict=True))
    local = timings.pop("local")
    return local, sk, timings["kernel"], sklearn_split, timings, zeros


def run_tmdb(batch_size: int, tmp: Path) -> DatasetResult:
    dataset, keywords = tmdb_parquet(tmp / "tmdb.parquet")
    model, fitted = cached_model(
        TMDB_MODEL, lambda: TopicModel(TMDB_TOPICS, device="cpu").fit([k for k in keywords if k])
    )
    print("TMDB: fitting the scikit-learn NMF ...", file=sys.stderr, flush=True)
    mlb = MultiLabelBinarizer(classes=model.vocabulary_.keywords, sparse_output=True).fit([])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        nmf = NMF(TMDB_TOPICS, random_state=SEED).fit(mlb.transform(keywords))
    note = (
        f"NMF({TMDB_TOPICS}) with scikit-learn's defaults, fitted on all items "
        f"({nmf.n_iter_} iterations); timed on all {dataset.items:,} items"
    )
    results = measure(dataset, model, nmf, dataset.items, batch_size, tmp)
    return DatasetResult(dataset, TMDB_MODEL, model, fitted, note, *results)


def run_synthetic(n_items: int, batch_size: int, tmp: Path) -> DatasetResult:
    print(f"synthetic: writing {n_items:,} items ...", file=sys.stderr, flush=True)
    start = time.perf_counter()
    dataset = write_synthetic(tmp / "synthetic.parquet", n_items)
    dataset.description += f"; written in {time.perf_counter() - start:.1f} s"
    sample = synthetic_sample()
    model, fitted = cached_model(SYN_MODEL, lambda: fit_synthetic_model(sample))
    print("synthetic: fitting the scikit-learn NMF ...", file=sys.stderr, flush=True)
    mlb = MultiLabelBinarizer(classes=model.vocabulary_.keywords, sparse_output=True).fit([])
    nmf = quick_nmf(SYN_TOPICS, SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        nmf.fit(mlb.transform(sample))
    nmf.set_params(max_iter=NMF().max_iter)  # transform with the default stopping rule
    subset = min(SKLEARN_SUBSET, n_items)
    note = (
        f"NMF({SYN_TOPICS}) fitted on the model's sample for {QUICK_NMF_ITERATIONS} iterations "
        f"(init nndsvda), transform with the defaults (max_iter {nmf.max_iter}, tol {nmf.tol:g}); "
        f"timed on the first {subset:,} items only, as NMF.transform is slow"
    )
    results = measure(dataset, model, nmf, subset, batch_size, tmp)
    return DatasetResult(dataset, SYN_MODEL, model, fitted, note, *results)
