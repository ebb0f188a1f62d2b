"""The child process of a training job: read the catalog, fit, add the model to the registry.

Spawned, not forked (no grpc or torch state is inherited), at a lower CPU priority and with one
torch thread fewer than the machine has, so that serving keeps its latency while it trains.
Every outcome goes back to the parent through `progress`: each epoch, then success or failure.

The child dies with its server, whatever killed the server: on Linux the kernel sends it
SIGKILL when the parent exits (PR_SET_PDEATHSIG), and everywhere a watchdog thread exits as
soon as the parent is gone. Its version is added under the server's lease, so a child that
outlived its server anyway adds nothing to a registry that a new server owns.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .spec import TrainSpec

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
WATCHDOG_S = 0.5  # how often the watchdog looks for its parent


def die_with_parent(parent_pid: int) -> None:
    """Exit as soon as the process `parent_pid` is no longer our parent."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCHDOG_S)
        os._exit(1)

    # The parent may have died before prctl took effect: the watchdog sees that at once.
    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


# An absolute path in a message: its folders go, its last component stays.
_PATH = re.compile(r"(?:/[^/\s'\":,;()]+)+/(?=[^/\s'\":,;()])")


def public_error(error: BaseException) -> str:
    """The job's error as a caller may see it: type and message, without server folders."""
    return _PATH.sub("", f"{type(error).__name__}: {error}")


def train_in_child(
    spec: TrainSpec,
    model_root: str,
    device: str,
    progress: Any,
    parent_pid: int | None = None,
    lease_token: str | None = None,
) -> None:
    if parent_pid is not None:
        die_with_parent(parent_pid)

    import torch

    from topicproj.models.core.topic_model import TopicModel
    from topicproj.models.data.catalog import read_catalog
    from topicproj.models.store.lease import Lease
    from topicproj.models.store.registry import ModelRegistry

    with contextlib.suppress(OSError):
        os.nice(10)  # serving first
    torch.set_num_threads(max(1, (os.cpu_count() or 2) - 1))
    try:
        catalog = read_catalog(spec.catalog, format=spec.format)
        registry = ModelRegistry(model_root)
        parent = registry.load(spec.parent, device) if spec.parent else None
        model = TopicModel.from_options(spec.options, device=device)
        model.fit(
            catalog.keywords,
            parent=parent,
            add_topics=spec.add_topics,
            on_epoch=lambda entry: progress.put(("epoch", entry)),
        )
        lease = Lease(Path(model_root), lease_token) if lease_token is not None else None
        version = registry.add(model, lease=lease)
        progress.put(("succeeded", version))
    except Exception as e:  # reported to the client as the job's error
        progress.put(("failed", public_error(e)))
