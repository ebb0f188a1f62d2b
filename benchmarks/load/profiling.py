"""Where the server's time goes: py-spy samples with the GIL held, sorted into parts."""

from __future__ import annotations

import collections
import math
import shutil
import subprocess
import sys
from pathlib import Path

# Where a sample's time goes: the deepest frame of its stack that matches a rule decides.
PROFILE_RULES: tuple[tuple[str, str], ...] = (
    ("vocabulary.py", "keyword mapping"),
    ("validation.py", "validation"),
    ("metrics.py", "metrics"),
    ("prometheus_client", "metrics"),
    ("projector.py", "compute"),
    ("activation.py", "compute"),
    ("torch", "compute"),
    ("build_response", "response building"),
    ("traffic.py", "traffic profile"),
    ("batching.py", "batching"),
    ("interceptors.py", "interceptor"),
    ("servicer.py", "servicer"),
    ("holder.py", "compute"),
    ("responses.py", "response building"),
    ("grpc", "grpc (transport, parse, serialise)"),
    ("asyncio", "event loop"),
)


def categorise(stack: str) -> str:
    frames = stack.split(";")
    for frame in reversed(frames):
        for needle, category in PROFILE_RULES:
            if needle in frame:
                return category
    return "other"


class Profiler:
    """py-spy on the server process over the measured window: who holds the GIL, doing what.

    Only samples of a thread holding the GIL count (`--gil`): in a one-process Python server
    the GIL is what runs out first, so this is where optimising pays.
    """

    RATE = 200

    def __init__(self, out_dir: Path, tag: str) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.raw = out_dir / f"profile-{tag}.txt"  # collapsed stacks, for flamegraph tools
        self.proc: subprocess.Popen[bytes] | None = None
        self.duration = 0.0

    def start(self, pid: int, duration: float) -> None:
        exe = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        self.duration = duration
        self.proc = subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--gil",
                "--subprocesses",
                "--nonblocking",
                "--rate",
                str(self.RATE),
                "--duration",
                str(max(1, round(duration))),
                "--format",
                "raw",
                "--output",
                str(self.raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def breakdown(self) -> tuple[list[tuple[str, float]], float]:
        """(category, share of GIL samples) by share, and the GIL's busy fraction."""
        if self.proc is None:
            return [], math.nan
        _, err = self.proc.communicate(timeout=60)
        if self.proc.returncode != 0 or not self.raw.exists():
            raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
        counts: collections.Counter[str] = collections.Counter()
        for line in self.raw.read_text().splitlines():
            stack, _, n = line.rpartition(" ")
            if stack:
                counts[categorise(stack)] += int(n)
        total = sum(counts.values())
        shares = [(c, n / total) for c, n in counts.most_common()] if total else []
        return shares, total / (self.RATE * round(self.duration))
