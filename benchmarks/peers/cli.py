"""`python -m benchmarks peers`: topicproj against the servers a team would pick instead.

The load benchmark with the peers' defaults: the same model, the same pre-serialised requests,
the same load generator and cores, one server after another in one run:

- topicproj (domain API, and the Open Inference Protocol from the same load generator),
- Ray Serve with `@serve.batch` behind its gRPC ingress, on a local Ray,
- a plain grpc.aio server that projects each request on its own (no batching),
- the no-op grpc.aio server of the same proto (Python gRPC's own ceiling),

at 64 clients sending one item, 16 sending 256 and 4 sending 1,000. Any option of
`python -m benchmarks load` can be added, and wins over these defaults.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from benchmarks.load.cli import main as load_main

DEFAULTS = [
    "--servers",
    "batched,oip,rayserve,plain,noop",
    "--scenarios",
    "64x1,16x256,4x1000",
    "--startup-timeout",
    "180",
]


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    # argparse keeps the last value of an option: the caller's come after the defaults
    return load_main([*DEFAULTS, *given], shown=("benchmarks.peers.cli", given))


if __name__ == "__main__":
    sys.exit(main())
