"""Temporary siblings of an output, and the leftovers of a run that was killed.

Every file or directory written whole and then renamed into place (a model directory, a
projection's Parquet or .npy file) is first written beside its final name as `.<name>.<pid>.tmp`
(a directory: `.<name>.<pid>.<8 random characters>.tmp`). A run that ends, with an error or an
interrupt, removes its own; one killed outright (SIGKILL, a lost machine) cannot, so the next
run that writes the same output removes every such sibling whose process is gone. A sibling of
a live process (another run writing the same output right now) is left alone.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

SUFFIX = ".tmp"


def temporary_sibling(path: Path) -> Path:
    """The name this process writes the file `path` under: `.<name>.<pid>.tmp`."""
    return path.with_name(f".{path.name}.{os.getpid()}{SUFFIX}")


def temporary_directory(path: Path) -> Path:
    """A new directory beside `path` to write it in: `.<name>.<pid>.<8 random>.tmp`."""
    prefix = f".{path.name}.{os.getpid()}."
    return Path(tempfile.mkdtemp(prefix=prefix, suffix=SUFFIX, dir=path.parent))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_leftovers(path: Path) -> list[Path]:
    """Remove the temporary siblings of `path` that dead processes left; returns them."""
    # The pid, then nothing or mkdtemp's 8 random characters: strict, so that the siblings of
    # another output whose name extends this one's ("m" and "m.5") are not taken for ours.
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)(\.[a-z0-9_]{{8}})?\.tmp$")
    removed = []
    try:
        siblings = list(path.parent.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for sibling in siblings:
        m = pattern.match(sibling.name)
        if m is None or _alive(int(m.group(1))):
            continue
        if sibling.is_dir() and not sibling.is_symlink():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)
        removed.append(sibling)
    return removed
