"""Offline projection: the local engine against a scikit-learn pipeline and the raw kernel.

For each dataset it measures, in one run and for the same items:

1. local engine: `models.offline.projection.project_catalog` from a Parquet input (id,
   keywords) to a Parquet output, end to end (read, map keywords, project, write);
2. scikit-learn: the pipeline a user would otherwise write: read the same Parquet into Python
   lists, `MultiLabelBinarizer(classes=<the model's vocabulary>, sparse_output=True)`, then
   `NMF.transform` with an NMF of as many topics fitted beforehand (fit not timed, nothing
   written);
3. raw kernel: `model.projector_(indices, offsets, weights)` under `torch.no_grad` on CSR batches
   of the same size mapped beforehand: the ceiling the engine can approach.

Then each stage of the local engine alone (read, map, kernel, write), and the peak RSS of the
local engine in child processes on 100,000 and on all items, to show memory is bounded by the
batch, not the catalog.

Datasets: TMDB (`../shared/data/tmdb_5000_movies.csv.zip`, 50 topics; skipped if absent) and a
synthetic catalog (`--items`, default 1,000,000, over 20,000 keywords, 256 topics). Models are
cached under runs/ (`bench-offline-tmdb50`, `bench-offline-syn256`); delete them to retrain.

    python -m benchmarks.offline                       # ~2 min on 2 cores, ~2 more to fit models
    python -m benchmarks.offline --items 200000 --skip-tmdb
    python -m benchmarks.offline --out benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp
import sklearn
import torch
from sklearn.decomposition import NMF
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import MultiLabelBinarizer

import models.training.loop as training_loop
from benchmarks.machine import command_line, cpu_name
from models.core.sparse import SparseBatch
from models.core.topic_model import TopicModel
from models.data.catalog import ArrowBatch, iter_catalog_arrow, read_catalog
from models.errors import ModelDirectoryError
from models.offline.projection import parquet_writer, project_catalog

ROOT = Path(__file__).resolve().parent.parent
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
SKLEARN_SUBSET = 20_000  # NMF.transform runs at a few thousand items/s: time a subset
MEMORY_SMALL = 100_000
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


# -- peak memory ------------------------------------------------------------------------------

# The child reads its peak RSS from VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec
# from the parent's address space, so a child of this (large) process would report at least the
# parent's RSS. VmHWM belongs to the child's own address space.
CHILD = """
import json, resource, sys, time
from pathlib import Path

def peak_mib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    unit = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit / 2**20

from models.offline.projection import project_catalog
from models.core.topic_model import TopicModel
model = TopicModel.load(sys.argv[1], device="cpu")
loaded = peak_mib()
start = time.perf_counter()
summary = project_catalog(
    model, [Path(sys.argv[2])], Path(sys.argv[3]), batch_size=int(sys.argv[4]), progress=False
)
seconds = time.perf_counter() - start
peak = peak_mib()
print(json.dumps({"items": summary.items, "seconds": seconds, "loaded": loaded, "peak": peak}))
"""


@dataclass
class MemoryResult:
    items: int
    seconds: float
    loaded_mib: float  # peak RSS once the model is loaded, before projecting
    peak_mib: float


def run_child(model: Path, data: Path, output: Path, batch_size: int) -> MemoryResult:
    """The local engine in a fresh interpreter, which reports its own peak RSS."""
    command = [sys.executable, "-c", CHILD, str(model), str(data), str(output), str(batch_size)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    output.unlink(missing_ok=True)
    if done.returncode != 0:
        raise RuntimeError(f"child failed with status {done.returncode}:\n{done.stderr[-2000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return MemoryResult(report["items"], report["seconds"], report["loaded"], report["peak"])


def run_memory(source: Dataset, model: Path, batch_size: int, tmp: Path) -> list[MemoryResult]:
    sizes = sorted({min(MEMORY_SMALL, source.items), source.items})
    results = []
    for size in sizes:
        data = source.path
        if size < source.items:
            data = tmp / f"synthetic-{size}.parquet"
            head_parquet(source.path, data, size)
        print(f"peak memory: {size:,} items ...", file=sys.stderr, flush=True)
        results.append(run_child(model, data, tmp / "child.parquet", batch_size))
    return results


# -- reporting --------------------------------------------------------------------------------


def _n(x: float, digits: int = 0) -> str:
    return "-" if math.isnan(x) else f"{x:,.{digits}f}"


def _ratio(x: float, y: float) -> float:
    return x / y if y and not math.isnan(x) and not math.isnan(y) else math.nan


def model_line(r: DatasetResult) -> str:
    shown = os.path.relpath(r.model_path, ROOT)
    m = r.model
    fitted = "fitted by this run" if r.fitted_now else "cached"
    extra = ""
    if r.dataset.name == "synthetic":
        extra = (
            f"; fitted with min_df 1 and {SYN_EPOCHS} epochs on {SAMPLE_ITEMS:,} sampled items "
            f"plus {math.ceil(SYN_KEYWORDS / COVERAGE_PER_ITEM):,} items covering every keyword, "
            f"its NMF initialisation cut to {QUICK_NMF_ITERATIONS} iterations"
        )
    return (
        f"model `{shown}` ({fitted}): {m.n_topics} topics, {len(m.vocabulary_):,} keywords, "
        f"{m.activation}, version {getattr(m, 'version_', '?')}{extra}; "
        f"{r.zeros:.0%} of its activations are exactly zero"
    )


def throughput_table(results: Sequence[DatasetResult], batch_size: int) -> list[str]:
    lines = [
        "| dataset | path | items per pass | passes | s per pass, fastest (slowest) | items/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        rows = [
            ("local engine: Parquet → `project_catalog` → Parquet", r.local),
            ("scikit-learn: Parquet → lists → MultiLabelBinarizer → NMF.transform", r.sklearn),
            (f"raw kernel: `projector_` on pre-mapped batches of {batch_size:,}", r.kernel),
        ]
        for name, t in rows:
            lines.append(
                f"| {r.dataset.name} | {name} | {t.items:,} | {len(t.passes)} "
                f"| {_n(t.seconds, 3)} ({_n(max(t.passes), 3)}) | **{_n(t.rate)}** |"
            )
    return lines


def ratio_table(results: Sequence[DatasetResult]) -> list[str]:
    lines = [
        "| dataset | local / scikit-learn | target ≥ 20× | local / raw kernel | target ≥ 30% |",
        "|---|---:|---|---:|---|",
    ]
    for r in results:
        vs_sk = _ratio(r.local.rate, r.sklearn.rate)
        vs_kernel = _ratio(r.local.rate, r.kernel.rate)
        lines.append(
            f"| {r.dataset.name} | {_n(vs_sk, 1)}× | {'met' if vs_sk >= 20 else '**missed**'} "
            f"| {_n(100 * vs_kernel)}% | {'met' if vs_kernel >= 0.3 else '**missed**'} |"
        )
    return lines


def stage_table(results: Sequence[DatasetResult]) -> list[str]:
    lines = [
        "| dataset | read Parquet → Arrow | map keywords | kernel | write Parquet "
        "| sum of stages | engine end to end | not in any stage |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        total = r.local.seconds
        parts = [r.stages[s].seconds for s in ("read", "map", "kernel", "write")]
        rest = total - sum(parts)

        def cell(seconds: float, total: float = total) -> str:
            return f"{seconds:.3f} s ({seconds / total:.0%})"

        lines.append(
            f"| {r.dataset.name} | {' | '.join(cell(p) for p in parts)} | {cell(sum(parts))} "
            f"| {total:.3f} s | {cell(rest)} |"
        )
    return lines


def memory_table(memory: Sequence[MemoryResult], batch_size: int) -> list[str]:
    lines = [
        "| items | batch | seconds | items/s | RSS with the model loaded MiB "
        "| peak RSS MiB | growth MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in memory:
        lines.append(
            f"| {m.items:,} | {batch_size:,} | {m.seconds:.1f} "
            f"| {_n(m.items / m.seconds)} | {m.loaded_mib:,.0f} | {m.peak_mib:,.0f} "
            f"| {m.peak_mib - m.loaded_mib:,.0f} |"
        )
    return lines


def code_version() -> str:
    """The commit measured, marked when the working tree differs from it (others edit it too)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "models"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{' with local changes to models/' if dirty else ''}" if head else "unknown"


def report(
    args: argparse.Namespace,
    results: Sequence[DatasetResult],
    memory: Sequence[MemoryResult],
    notes: Sequence[str],
    load_before: float,
    wall: float,
) -> str:
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = [
        "## Offline projection: local engine vs scikit-learn vs the raw kernel (issue 4)",
        "",
        "```sh",
        command_line("benchmarks.offline", args.argv),
        "```",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu_name()}), {platform.system()}, "
        f"Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), pyarrow {pa.__version__}, scikit-learn "
        f"{sklearn.__version__}; {date}; 1-minute load average {load_before:.2f} before the run, "
        f"{load_after:.2f} after. Code: commit {code_version()}. "
        f"Everything on the CPU. Wall time {wall:.0f} s.",
        "",
    ]
    for r in results:
        text.append(f"- **{r.dataset.name}**: {r.dataset.description}; {model_line(r)}.")
        text.append(f"  scikit-learn: {r.sklearn_note}.")
    text += [*(f"- {n}" for n in notes), ""]
    if results:
        text += [
            "What is timed. Local engine: `project_catalog(model, [input.parquet], out.parquet, "
            f"batch_size={args.batch_size}, progress=False)`, reading, keyword mapping, "
            "projection and writing included. scikit-learn: reading `id` and `keywords` from the "
            "same Parquet into Python lists, `MultiLabelBinarizer(classes=<the model's "
            "vocabulary>, sparse_output=True).transform` (presence, as the model is trained on), "
            "`NMF.transform`; its output is not written. Raw kernel: "
            "`model.projector_(indices, offsets, weights)` under `torch.no_grad`, keyword mapping "
            "excluded. The passes of all paths are interleaved in rounds; each path runs at least "
            "twice and until 2 s have run, and its fastest pass is shown (the machine is shared, "
            "and slow passes measure the other jobs as much as the code).",
            "",
            *throughput_table(results, args.batch_size),
            "",
            *ratio_table(results),
            "",
            "Each stage of the local engine timed alone on the same items and batches (fastest "
            "pass): reading is `iter_catalog_arrow`, mapping is `Vocabulary.map_batch`, the "
            "kernel is the raw-kernel pass above, writing is `ParquetWriter.write_batch` of the "
            "engine's own output. The last column is what the pipeline costs beyond its stages.",
            "",
            *stage_table(results),
            "",
        ]
        for r in results:
            s = r.sklearn_split
            total = sum(s.values())
            text.append(
                f"scikit-learn on {r.dataset.name}, fastest pass: "
                + ", ".join(f"{k} {v:.3f} s ({v / total:.0%})" for k, v in s.items())
                + "."
            )
        text.append("")
    if memory:
        text += [
            "Peak memory: the local engine in a fresh `python -c` child per row, one pass, which "
            "reports its own peak RSS (`VmHWM`) once the model is loaded and after projecting.",
            "",
            *memory_table(memory, args.batch_size),
            "",
        ]
    text.append("")  # a blank line after the last table, so text appended next is not a row
    return "\n".join(text)


# -- main -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.offline",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument(
        "--items",
        type=int,
        default=1_000_000,
        help="items of the synthetic catalog (default 1000000)",
    )
    p.add_argument(
        "--batch-size", type=int, default=8192, help="items per batch, every path (default 8192)"
    )
    p.add_argument("--skip-tmdb", action="store_true", help="leave out the TMDB dataset")
    p.add_argument(
        "--skip-synthetic",
        action="store_true",
        help="leave out the synthetic dataset and the peak-memory runs",
    )
    p.add_argument("--out", type=Path, help="append the results (Markdown) to this file")
    return p


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="topicproj-offline-") as tmp:
        yield Path(tmp)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.items < 1 or args.batch_size < 1:
        parser.error("--items and --batch-size must be >= 1")
    wall_start = time.perf_counter()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    results: list[DatasetResult] = []
    memory: list[MemoryResult] = []
    notes: list[str] = []
    with scratch() as tmp:
        if args.skip_tmdb:
            notes.append("TMDB skipped (`--skip-tmdb`).")
        elif not TMDB.exists():
            notes.append(f"TMDB skipped: `{os.path.relpath(TMDB, ROOT)}` is absent.")
        else:
            results.append(run_tmdb(args.batch_size, tmp))
        if args.skip_synthetic:
            notes.append("Synthetic dataset and peak memory skipped (`--skip-synthetic`).")
        else:
            synthetic = run_synthetic(args.items, args.batch_size, tmp)
            results.append(synthetic)
            memory = run_memory(synthetic.dataset, SYN_MODEL, args.batch_size, tmp)
    block = report(args, results, memory, notes, load_before, time.perf_counter() - wall_start)
    print(block)
    if args.out is not None:
        before = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        # A heading needs a blank line above it to stay a heading after the previous text.
        gap = 2 - (len(before) - len(before.rstrip("\n"))) if before.strip() else 0
        with open(args.out, "a", encoding="utf-8") as f:
            f.write("\n" * max(gap, 0) + block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
