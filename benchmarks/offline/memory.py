"""Peak memory of the local engine in child processes: bounded by the batch, not the catalog."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks.offline.catalogs import ROOT, Dataset, head_parquet

MEMORY_SMALL = 100_000


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

from topicproj.models.offline.projection import project_catalog
from topicproj.models.core.topic_model import TopicModel
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
