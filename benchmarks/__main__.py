"""One entry point for every benchmark: `python -m benchmarks <name> [options]`.

Each benchmark prints a Markdown section (its command, the machine, its tables) and, with
`--out benchmarks/RESULTS.md`, appends it there. `python -m benchmarks <name> --help` lists the
options of one.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "load": ("benchmarks.load.cli", "the gRPC service under load, against its ceilings"),
    "batcher": ("benchmarks.batcher", "what the batcher adds to a lone request"),
    "kernel": ("benchmarks.kernel", "the projection kernel: inference, autograd, plain ReLU"),
    "offline": ("benchmarks.offline.cli", "offline projection against scikit-learn and the kernel"),
    "floor": ("benchmarks.floor", "`topicproj project` against its whole-process floor"),
    "peers": ("benchmarks.peers.cli", "topicproj against Ray Serve and a plain grpc.aio server"),
    "hostile": ("benchmarks.hostile", "health and a small request while the largest requests run"),
    "reach": ("benchmarks.keyword_reach", "topics that one or two keywords fire, per activation"),
    "gpu": ("benchmarks.gpu_check", "CUDA correctness, kernel timing and serving (needs a GPU)"),
}


def usage() -> str:
    lines = ["usage: python -m benchmarks <name> [options]", "", "benchmarks:"]
    lines += [f"  {name:8s} {text}" for name, (_, text) in BENCHMARKS.items()]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
