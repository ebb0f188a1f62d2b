"""The Markdown block the benchmark prints and appends to RESULTS.md."""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import subprocess
from collections.abc import Sequence

import pyarrow as pa
import sklearn
import torch

from benchmarks.machine import command_line, cpu_name
from benchmarks.offline.catalogs import (
    COVERAGE_PER_ITEM,
    QUICK_NMF_ITERATIONS,
    ROOT,
    SAMPLE_ITEMS,
    SYN_EPOCHS,
    SYN_KEYWORDS,
)
from benchmarks.offline.memory import MemoryResult
from benchmarks.offline.paths import DatasetResult

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
        "## Offline projection: local engine vs scikit-learn vs the raw kernel",
        "",
        "```sh",
        command_line("benchmarks.offline.cli", args.argv),
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
