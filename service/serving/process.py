"""One server process: pick its model, tune the interpreter, serve until a signal, then stop."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable

import torch

from topicproj.service.settings import Settings

from .loading import load_model, open_registry
from .server import ProjectionServer

log = logging.getLogger(__name__)

Ready = Callable[[ProjectionServer], None]

# The interpreter settings of a server process, measured with benchmarks.load (RESULTS.md):
# - The compute thread and the event loop share the GIL; by default a thread that wants it
#   waits up to 5 ms for the other to let go, which the loop pays on every batch. 0.5 ms gave
#   +10% items/s at 256-item requests.
# - Every request allocates thousands of objects, so the collector's youngest generation
#   fills every few requests, and now and then a full collection walks every object the
#   model, vocabulary and libraries hold: the 64 x 1 p99 was 144 ms against a 25 ms median.
#   Freezing what exists once serving starts, and collecting less often, brought it to 51 ms.
SWITCH_INTERVAL_S = 0.0005
GC_THRESHOLD = (20_000, 20, 100)


def tune_interpreter() -> None:
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.collect()
    gc.freeze()  # the model and libraries are never garbage; never walk them again
    gc.set_threshold(*GC_THRESHOLD)


def announce(server: ProjectionServer) -> None:
    s = server.settings
    print(
        f"topicproj: serving model {server.model.version_} on {s.host}:{server.port}"
        + (f", metrics on :{server.metrics_port}/metrics" if server.metrics_port else ""),
        flush=True,
    )


async def serve(settings: Settings, ready: Ready = announce, *, reuse_port: bool = False) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully."""
    torch.set_num_threads(settings.torch_threads)
    registry, refused = None, []
    if settings.model_root is not None:
        model, registry, refused = open_registry(settings)
    else:
        model = load_model(settings)
    server = ProjectionServer(model, settings, reuse_port=reuse_port, registry=registry)
    server.metrics.models_refused.inc(len(refused))
    try:
        await server.start()
    except BaseException:
        await server.stop(0)  # release the port, the metrics thread and the worker
        raise
    stop = asyncio.Event()
    received: list[int] = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda sig=sig: (received.append(sig), stop.set()))
    tune_interpreter()
    ready(server)
    await stop.wait()
    # SIGTERM is an orchestrator's: drain first. Ctrl-C (SIGINT) is a person's at a terminal:
    # no load balancer to wait for, so straight to the grace period.
    await server.shutdown(drain=received[0] == signal.SIGTERM)
