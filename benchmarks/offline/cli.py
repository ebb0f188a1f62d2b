"""The command line: `python -m benchmarks offline` (or `python -m benchmarks.offline`)."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from benchmarks.offline.catalogs import ROOT, SYN_MODEL, TMDB
from benchmarks.offline.memory import MemoryResult, run_memory
from benchmarks.offline.paths import DatasetResult, run_synthetic, run_tmdb
from benchmarks.offline.report import report

# -- main -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks offline",
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
