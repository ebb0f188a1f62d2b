"""`topicproj project` against its floor: whole-process wall time, measured in the same run.

The floor is what any projection of the same catalog must pay, in a fresh process like the real
run: read the input with pyarrow, import torch, map keywords to ids with one Arrow kernel, run the
raw kernel (`embedding_bag` on the model's topic weights, then a ReLU) over the same items, and
write an output of the same shape (id, topics) with pyarrow, with the engine's writer options.
The ratio `topicproj project` / floor is the figure to read; both run as child processes,
interleaved, fastest pass of each kept. The scikit-learn pipeline of `benchmarks offline` is
timed beside them on the Parquet input (read, MultiLabelBinarizer, NMF.transform; not written).

Catalogs:
- real-shaped: ~464,000 short items (3.4 keywords on average, a third with none) drawn from the
  TMDB keywords by popularity, as JSONL and Parquet; the 50-topic TMDB model (fitted and cached
  under runs/ on first use). Skipped when the TMDB file is absent.
- synthetic: `benchmarks offline`'s 1,000,000 x 20,000 keywords x 256 topics catalog and model.

    python -m benchmarks floor                             # both catalogs, ~6 min on 2 cores
    python -m benchmarks floor --skip-synthetic --out benchmarks/RESULTS.md
    python -m benchmarks floor --device cuda --skip-real   # the GPU run, ~2 min on one GPU
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.machine import command_line, cpu_name, emit

ROOT = Path(__file__).resolve().parent.parent
TMDB = ROOT.parent / "shared" / "data" / "tmdb_5000_movies.csv.zip"
TMDB_MODEL = ROOT / "runs" / "bench-model-tmdb50"  # the load benchmark's model
REAL_ITEMS = 464_000
EMPTY_SHARE = 1 / 3
MEAN_KEYWORDS = 3.4  # over all items, the empty third included

# The floor, in a fresh interpreter: argv = input, model dir, output, batch size, device.
FLOOR = r"""
import sys, time
import pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq, pyarrow.json as pj
src, model_dir, out, batch, device = sys.argv[1:6]
batch = int(batch)
table = pq.read_table(src) if src.endswith(".parquet") else pj.read_json(src)
import json, os, torch, torch.nn.functional as F
if device == "cpu":  # the engine's setting (models/offline/projection.py, _compute_threads)
    torch.set_num_threads(max(1, min(torch.get_num_threads(), (os.cpu_count() or 2) - 2)))
from safetensors.torch import load_file
vocab = json.load(open(f"{model_dir}/vocabulary.json"))
keywords = pa.array(vocab["keywords"] if isinstance(vocab, dict) else vocab, pa.string())
W = load_file(f"{model_dir}/weights.safetensors")["projector.keyword_topics"].to(device)
lists = table.column("keywords").combine_chunks()
ids = pc.cast(table.column("id"), pa.string()).combine_chunks()
schema = pa.schema([("id", pa.string()), ("topics", pa.list_(pa.float32(), W.shape[1]))])
writer = pq.ParquetWriter(out, schema, use_dictionary=["id"], compression="zstd")
with torch.no_grad():
    for s in range(0, len(lists), batch):
        part = lists.slice(s, batch)
        index = pc.index_in(pc.list_flatten(part), value_set=keywords)
        known = pc.is_valid(index)
        rows = pc.list_parent_indices(part).filter(known).to_numpy()  # unknowns dropped
        offsets = np.zeros(len(part), dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(part))[:-1], out=offsets[1:])
        index = torch.from_numpy(index.filter(known).to_numpy().astype(np.int64))
        offsets = torch.from_numpy(offsets)
        Y = torch.relu(F.embedding_bag(index.to(device), W, offsets.to(device), mode="sum"))
        Y = Y.cpu().numpy()
        topics = pa.FixedSizeListArray.from_arrays(pa.array(Y.reshape(-1)), W.shape[1])
        writer.write_batch(pa.record_batch([ids.slice(s, batch), topics], schema=schema))
writer.close()
"""
FLOOR = "import numpy as np\n" + FLOOR


@dataclass
class Timing:
    passes: list[float] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return min(self.passes) if self.passes else math.nan


def run_child(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n{done.stderr[-3000:]}")
    return seconds


def real_shaped(path: Path, n_items: int, seed: int = 0) -> pa.Table:
    """Short items drawn from the TMDB keywords by their popularity there."""
    from topicproj.models.data.catalog import read_catalog

    counts = Counter(k for kws in read_catalog(TMDB).keywords for k in kws)
    names = np.array(list(counts))
    weights = np.array(list(counts.values()), dtype=np.float64)
    rng = np.random.default_rng(seed)
    mean_nonempty = MEAN_KEYWORDS / (1 - EMPTY_SHARE)
    lengths = np.where(
        rng.random(n_items) < EMPTY_SHARE, 0, 1 + rng.poisson(mean_nonempty - 1, n_items)
    )
    drawn = rng.choice(len(names), size=int(lengths.sum()), p=weights / weights.sum())
    offsets = np.zeros(n_items + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    keywords = pa.ListArray.from_arrays(pa.array(offsets), pa.array(names[drawn]))
    ids = pa.array([f"r{i:07d}" for i in range(n_items)])
    return pa.table({"id": ids, "keywords": keywords})


def write_jsonl(table: pa.Table, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for ident, kws in zip(
            table.column("id").to_pylist(), table.column("keywords").to_pylist(), strict=True
        ):
            f.write(json.dumps({"id": ident, "keywords": kws}) + "\n")


def tmdb_model() -> Path:
    from topicproj.models.core.topic_model import TopicModel
    from topicproj.models.data.catalog import read_catalog
    from topicproj.models.errors import ModelDirectoryError

    try:
        TopicModel.load(TMDB_MODEL, device="cpu")
    except ModelDirectoryError:
        print(f"fitting {TMDB_MODEL} ...", file=sys.stderr, flush=True)
        keywords = [k for k in read_catalog(TMDB).keywords if k]
        TopicModel(50, device="cpu").fit(keywords).save(TMDB_MODEL, overwrite=True)
    return TMDB_MODEL


def sklearn_rate(parquet: Path, model_dir: Path, subset: int) -> float:
    """Items/s of the scikit-learn pipeline of `benchmarks offline` on the first `subset` items."""
    from sklearn.decomposition import NMF
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.preprocessing import MultiLabelBinarizer

    from topicproj.models.core.topic_model import TopicModel

    model = TopicModel.load(model_dir, device="cpu")
    mlb = MultiLabelBinarizer(classes=model.vocabulary_.keywords, sparse_output=True).fit([])
    sample = pq.read_table(parquet).slice(0, 20_000).column("keywords").to_pylist()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        nmf = NMF(model.n_topics, init="nndsvda", max_iter=10, random_state=0)
        nmf.fit(mlb.transform(sample))
        nmf.set_params(max_iter=200)
        best = math.inf
        for _ in range(2):
            start = time.perf_counter()
            batch = next(pq.ParquetFile(parquet).iter_batches(batch_size=subset))
            X = mlb.transform(batch.column("keywords").to_pylist())
            nmf.transform(X)
            best = min(best, time.perf_counter() - start)
    return subset / best


def kernel_bound(parquet: Path, model_dir: Path, batch_size: int, device: str) -> str:
    """The kernel on the device against its memory-bandwidth bound, as a Markdown paragraph.

    Bandwidth is measured here, as a device-to-device copy of 1 GiB. The bound counts only the
    bytes the kernel cannot avoid: each keyword's row of topic weights read once per occurrence,
    and the (items, topics) float32 result written once; the activation's element-wise passes
    over the result are not counted, so the ratio includes them.
    """
    import torch

    from topicproj.models.core.topic_model import TopicModel
    from topicproj.models.data.arrow_catalog import iter_catalog_arrow

    model = TopicModel.load(model_dir, device=device)
    batches = [
        model.vocabulary_.map_batch(b.keywords).torch_inputs(device)
        for b in iter_catalog_arrow(parquet, batch_size=batch_size)
    ]
    items = sum(len(offsets) for _, offsets, _ in batches)
    occurrences = sum(len(indices) for indices, _, _ in batches)
    topics = model.n_topics
    synchronize = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    source = torch.empty(1 << 28, dtype=torch.float32, device=device)  # 1 GiB
    target = torch.empty_like(source)
    best_copy = best_kernel = math.inf
    with torch.no_grad():
        for _ in range(5):
            synchronize()
            start = time.perf_counter()
            target.copy_(source)
            synchronize()
            best_copy = min(best_copy, time.perf_counter() - start)
            start = time.perf_counter()
            for inputs in batches:
                model.projector_(*inputs)
            synchronize()
            best_kernel = min(best_kernel, time.perf_counter() - start)
    bandwidth = 2 * source.numel() * 4 / best_copy  # read + write, bytes/s
    moved = (occurrences + items) * topics * 4
    bound = moved / bandwidth
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "cpu"
    return (
        f"kernel on {device} ({name}): `projector_` over all {items:,} items in batches of "
        f"{batch_size:,}, inputs already on the device, fastest of 5: "
        f"{best_kernel * 1e3:.1f} ms; measured copy bandwidth "
        f"{bandwidth / 1e9:,.0f} GB/s; unavoidable bytes {moved / 1e9:.2f} GB ({occurrences:,} "
        f"weight rows + {items:,} result rows of {topics} float32), so the bound is "
        f"{bound * 1e3:.2f} ms and the kernel takes **{best_kernel / bound:.1f}×** it"
    )


@dataclass
class Row:
    name: str
    items: int
    project: Timing
    floor: Timing
    sklearn_rate: float
    command: str


def measure(name: str, source: Path, model: Path, items: int, args: argparse.Namespace) -> Row:
    out = Path(tempfile.mkdtemp(prefix="topicproj-floor-"))
    project = [
        sys.executable, "-m", "topicproj.service.cli", "project", "--model", str(model), "--input",
        str(source), "--output", str(out / "p.parquet"), "--quiet", "--device", args.device,
        "--batch-size", str(args.batch_size),
    ]  # fmt: skip
    floor = [
        sys.executable, "-c", FLOOR, str(source), str(model), str(out / "f.parquet"),
        str(args.batch_size), args.device,
    ]  # fmt: skip
    t_project, t_floor = Timing(), Timing()
    for round_ in range(args.passes):
        print(f"{name}: round {round_ + 1}", file=sys.stderr, flush=True)
        t_floor.passes.append(run_child(floor))
        t_project.passes.append(run_child(project))
    rows = pq.read_metadata(out / "p.parquet").num_rows
    assert rows == pq.read_metadata(out / "f.parquet").num_rows == items, rows
    rate = math.nan
    if source.suffix == ".parquet" and args.device == "cpu":
        rate = sklearn_rate(source, model, min(items, 20_000))
    shown = " ".join(["topicproj", *project[3:]]).replace(str(out), "$OUT")
    shown = shown.replace(str(source.parent), "$DATA").replace(f"{ROOT}/", "")
    return Row(name, items, t_project, t_floor, rate, shown)


def report(args: argparse.Namespace, rows: list[Row], notes: list[str]) -> str:
    import torch

    lines = [
        f"## `topicproj project` against its floor, whole process ({args.device})",
        "",
        "```sh",
        command_line("benchmarks.floor", args.argv),
        "```",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu_name()}), torch {torch.__version__}, pyarrow "
        f"{pa.__version__}, device {args.device}; "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"load average {os.getloadavg()[0]:.2f} at the end. Fastest of {args.passes} "
        "interleaved passes of each child process.",
        "",
        *[f"- {n}" for n in notes],
        "",
        "| catalog | items | `topicproj project` s | floor s | project / floor | target ≤ 1.5× "
        "| project items/s | scikit-learn items/s |",
        "|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        ratio = r.project.seconds / r.floor.seconds
        lines.append(
            f"| {r.name} | {r.items:,} | {r.project.seconds:.2f} | {r.floor.seconds:.2f} "
            f"| **{ratio:.2f}×** | {'met' if ratio <= 1.5 else '**missed**'} "
            f"| {r.items / r.project.seconds:,.0f} | "
            f"{'-' if math.isnan(r.sklearn_rate) else f'{r.sklearn_rate:,.0f}'} |"
        )
    lines += ["", "The project commands, as run:", ""]
    lines += [f"- {r.name}: `{r.command}`" for r in rows]
    return "\n".join(lines) + "\n\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks floor", description=__doc__)
    p.add_argument("--items", type=int, default=1_000_000, help="synthetic catalog items")
    p.add_argument("--real-items", type=int, default=REAL_ITEMS, help="real-shaped items")
    p.add_argument("--batch-size", type=int, default=8192)
    p.add_argument("--passes", type=int, default=3)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--skip-real", action="store_true")
    p.add_argument("--skip-synthetic", action="store_true")
    p.add_argument("--out", type=Path, help="append the Markdown to this file")
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    rows: list[Row] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="topicproj-floor-data-") as tmp_dir:
        tmp = Path(tmp_dir)
        if not args.skip_real and TMDB.exists():
            table = real_shaped(tmp / "real.parquet", args.real_items)
            pq.write_table(table, tmp / "real.parquet")
            write_jsonl(table, tmp / "real.jsonl")
            lengths = np.asarray(pa.compute.list_value_length(table.column("keywords")))
            notes.append(
                f"real-shaped: {len(table):,} items drawn from the TMDB keywords by popularity, "
                f"{lengths.mean():.2f} keywords each on average, {np.mean(lengths == 0):.0%} "
                f"with none; model `{os.path.relpath(TMDB_MODEL, ROOT)}` (50 topics)"
            )
            model = tmdb_model()
            for suffix in ("jsonl", "parquet"):
                source = tmp / f"real.{suffix}"
                rows.append(measure(f"real-shaped {suffix}", source, model, len(table), args))
        elif not args.skip_real:
            notes.append("real-shaped catalog skipped: the TMDB file is absent")
        if not args.skip_synthetic:
            from benchmarks.offline.catalogs import (
                SYN_MODEL,
                cached_model,
                fit_synthetic_model,
                synthetic_sample,
                write_synthetic,
            )

            dataset = write_synthetic(tmp / "synthetic.parquet", args.items)
            cached_model(SYN_MODEL, lambda: fit_synthetic_model(synthetic_sample()))
            notes.append(f"synthetic: {dataset.description}; model `runs/{SYN_MODEL.name}`")
            rows.append(measure("synthetic parquet", dataset.path, SYN_MODEL, args.items, args))
            if args.device != "cpu":
                notes.append(kernel_bound(dataset.path, SYN_MODEL, args.batch_size, args.device))
    emit(report(args, rows, notes), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
