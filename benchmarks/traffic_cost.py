"""What the traffic profile adds per batch, against what computing the batch costs.

The load benchmark's rows (profile on against off) swing by tens of percent on a shared
machine; this times the two pieces of one batch in one process, interleaved, so both see the
same load: `ModelHolder.compute` (map and project, before the answers) and
`TrafficProfiles.record` (after them, off the requests' path), on batches of TMDB items.

    python -m benchmarks.traffic_cost --model runs/bench-model-tmdb50 --items 1,64,256
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.catalog import read_catalog
from topicproj.service.metrics import ServiceMetrics
from topicproj.service.serving.holder import ModelHolder
from topicproj.service.serving.traffic import TrafficProfiles
from topicproj.service.serving.validation import Bags
from topicproj.service.settings import Settings


def bags(items: list[list[str]]) -> Bags:
    return Bags(
        keywords=[k for kws in items for k in kws],
        counts=np.fromiter(map(len, items), np.int64, len(items)),
        weights=None,
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--data", default="../shared/data/tmdb_5000_movies.csv.zip")
    p.add_argument("--items", default="1,64,256", help="items per batch")
    p.add_argument("--repeats", type=int, default=300)
    args = p.parse_args()
    torch.set_num_threads(1)  # as a serving worker runs (`--torch-threads`, default 1)
    model = TopicModel.load(args.model, device="cpu")
    pool = [k for k in read_catalog(args.data).keywords if k]
    holder = ModelHolder(model, ServiceMetrics())
    profiles = TrafficProfiles(holder, Settings(metrics_port=None))
    print("| items per batch | compute, mean µs | profile update, mean µs | update / compute |")
    print("|---:|---:|---:|---:|")
    rng = np.random.default_rng(0)
    for n in (int(x) for x in args.items.split(",")):
        compute, record = [], []
        for _ in range(args.repeats):
            start = int(rng.integers(0, len(pool) - n))
            work = [bags(pool[start : start + n])]
            t0 = time.perf_counter()
            results = holder.compute(work)
            t1 = time.perf_counter()
            profiles.record(work, results)
            t2 = time.perf_counter()
            compute.append(t1 - t0)
            record.append(t2 - t1)
        profiles.flush()  # what is still gathered counts too
        record[-1] += time.perf_counter() - t2
        # Means, not medians: the update is paid in bursts (every FLUSH_ITEMS items).
        c, r = statistics.fmean(compute) * 1e6, statistics.fmean(record) * 1e6
        print(f"| {n} | {c:,.0f} | {r:,.0f} | {r / c:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
