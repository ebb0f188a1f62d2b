"""What every benchmark records about where and how it ran."""

from __future__ import annotations

import contextlib
import platform
import shlex
from collections.abc import Sequence
from pathlib import Path


def cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


ENTRY_NAMES = {
    "benchmarks.load": "load",
    "benchmarks.offline.cli": "offline",
    "benchmarks.batcher": "batcher",
    "benchmarks.kernel": "kernel",
    "benchmarks.floor": "floor",
    "benchmarks.peers.cli": "peers",
    "benchmarks.hostile": "hostile",
}


def command_line(module: str, argv: Sequence[str]) -> str:
    """The command that reproduces a run, as RESULTS.md shows it (see benchmarks/__main__)."""
    name = ENTRY_NAMES.get(module)
    head = f"python -m benchmarks {name}" if name else f"python -m {module}"
    return " ".join([head, *(shlex.quote(a) for a in argv)])


def emit(text: str, out: Path | None) -> None:
    """Print a benchmark's Markdown section, and append it to `out` when given."""
    print(text)
    if out is not None:
        with open(out, "a", encoding="utf-8") as f:
            f.write(text)
