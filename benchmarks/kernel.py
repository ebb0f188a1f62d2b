"""The projection kernel on the CPU: the inference path against the general one and plain ReLU.

For each activation and topic count, in one process and one run, on one torch thread (as a
serving worker has), it times a forward pass over the same random batch three ways:

- inference: `Projector.forward` without gradients, as serving and offline projection run it;
- autograd: the same forward pass while autograd records it, as training runs it;
- plain ReLU: `relu(embedding_bag(x, W) + b)`, what a projector without the overlap would cost;
- with `--before REV`, also the projector of the project at git revision REV, loaded beside the
  current one (under another package name) with the same weights, so a change to the kernel is
  measured against its predecessor in one process.

    python -m benchmarks kernel --out benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.machine import command_line, cpu_name, emit
from topicproj.models.core.projector import Projector, ProjectorConfig

ROOT = Path(__file__).resolve().parents[1]
KEYWORDS, PER_ITEM = 20_000, 8
REPEATS = 9


def projector(topics: int, activation: str) -> Projector:
    g = torch.Generator().manual_seed(0)
    p = Projector(ProjectorConfig(KEYWORDS, topics, activation))
    with torch.no_grad():
        p.keyword_topics.copy_(torch.rand(KEYWORDS, topics, generator=g) ** 4)
        p.bias.copy_(torch.randn(topics, generator=g) * 0.01)
        p.activation.threshold.copy_(torch.rand(topics, generator=g) * 0.02)
    return p.eval()


def batch(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    lengths = torch.randint(1, 2 * PER_ITEM, (n,), generator=g)
    indices = torch.randint(0, KEYWORDS, (int(lengths.sum()),), generator=g)
    offsets = torch.cumsum(lengths, 0) - lengths
    return indices, offsets, torch.ones(len(indices))


def projector_before(revision: str, topics: int, activation: str, now: Projector) -> Any:
    """The projector of `revision`, with `now`'s weights, checked to give the same numbers."""
    name = f"models_{revision}".replace("-", "_").replace("~", "_").replace("^", "_")
    if name not in sys.modules:
        folder = Path(tempfile.mkdtemp(prefix="topicproj-kernel-"))
        archive = subprocess.run(
            ["git", "archive", revision, "models"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        (folder / "models").rename(folder / name)
        for path in (folder / name).rglob("*.py"):  # its absolute imports name its own copy
            text = path.read_text(encoding="utf-8")
            for prefix in ("from topicproj.models.", "from models."):  # after and before the rename
                text = text.replace(prefix, f"from {name}.")
            path.write_text(text, encoding="utf-8")
        sys.path.insert(0, str(folder))
    for module in (f"{name}.core.projector", f"{name}.projector"):
        with contextlib.suppress(ModuleNotFoundError):
            old = importlib.import_module(module)
            break
    else:
        raise SystemExit(f"{revision}: no projector module found")
    m = old.Projector(old.ProjectorConfig(KEYWORDS, topics, activation))
    m.load_state_dict(now.state_dict())
    return m.eval()


def recorded(m: Projector, *inputs: torch.Tensor) -> torch.Tensor:
    """The forward pass with autograd recording it, as in training."""
    with torch.enable_grad():
        return m(*inputs)


def fastest_ms(ways: Sequence[Callable[[], object]]) -> list[float]:
    """The fastest of REPEATS passes of each way, the ways interleaved so that a slow moment
    of the machine hits them alike (the minimum, as timeit advises: noise only adds time)."""
    for f in ways:
        f()
    best = [float("inf")] * len(ways)
    for _ in range(REPEATS):
        for i, f in enumerate(ways):
            start = time.perf_counter()
            f()
            best[i] = min(best[i], time.perf_counter() - start)
    return [b * 1e3 for b in best]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks kernel", description=__doc__)
    p.add_argument("--items", type=int, default=32_768, help="items per batch (default 32768)")
    p.add_argument("--topics", default="50,256", help="topic counts (default 50,256)")
    p.add_argument(
        "--activations",
        default="relu,prelu,overlap",
        help="activations, by name (default relu,prelu,overlap; any of TrainOptions' names)",
    )
    p.add_argument("--before", help="also time the projector of this git revision")
    p.add_argument("--out", type=Path, help="append the results (Markdown) to this file")
    args = p.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(1)
    idx, off, w = batch(args.items)
    lines = [
        "```sh",
        command_line("benchmarks.kernel", argv),
        "```",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu_name()}), {platform.system()}, Python "
        f"{platform.python_version()}, torch {torch.__version__}, one torch thread; "
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC. {args.items:,} items of "
        f"1 to {2 * PER_ITEM - 1} keywords over {KEYWORDS:,}; fastest of {REPEATS} "
        "interleaved passes, ms.",
        "",
        "| topics | activation | inference | autograd | plain ReLU | inference / autograd "
        "| inference / plain ReLU |"
        + (f" {args.before} | inference / {args.before} |" if args.before else ""),
        "|---:|---|---:|---:|---:|---:|---:|" + ("---:|---:|" if args.before else ""),
    ]
    with torch.no_grad():
        for topics in (int(t) for t in args.topics.split(",")):
            for activation in args.activations.split(","):
                m = projector(topics, activation)
                ways = [
                    lambda m=m: m(idx, off, w),
                    lambda m=m: recorded(m, idx, off, w),
                    lambda m=m: torch.relu(
                        F.embedding_bag(
                            idx, m.keyword_topics, off, mode="sum", per_sample_weights=w
                        )
                        + m.bias
                    ),
                ]
                if args.before:
                    old = projector_before(args.before, topics, activation, m)
                    if not torch.equal(old(idx, off, w), m(idx, off, w)):
                        raise SystemExit(f"{activation}, {topics} topics: {args.before} disagrees")
                    ways.append(lambda old=old: old(idx, off, w))
                fast, general, plain, *before = fastest_ms(ways)
                same = torch.equal(m(idx, off, w), recorded(m, idx, off, w).detach())
                if not same:
                    raise SystemExit(f"{activation}, {topics} topics: the two paths disagree")
                row = (
                    f"| {topics} | {activation} | {fast:.1f} | {general:.1f} | {plain:.1f} "
                    f"| {fast / general:.2f}× | {fast / plain:.2f}× |"
                )
                if before:
                    row += f" {before[0]:.1f} | {fast / before[0]:.2f}× |"
                lines.append(row)
    text = "\n".join([*lines, "", ""])
    emit(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
