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


def command_line(module: str, argv: Sequence[str]) -> str:
    """The command that reproduces a run, as RESULTS.md shows it."""
    return " ".join([f"python -m {module}", *(shlex.quote(a) for a in argv)])
