"""`topicproj serve --workers N`: N server processes on one port.

One Python process serves at most one core's worth of requests: the event loop, protobuf and
response building all hold the GIL. So, as grpc recommends for Python, N processes each bind the
same port with SO_REUSEPORT and the kernel spreads incoming connections over them. Each worker
is a whole server (model, batcher, health, metrics endpoint); nothing is shared between them.

The supervisor (this module) reserves the port, starts the workers with the spawn method (grpc
must not be forked once it has started threads), prints one line once all of them serve,
forwards SIGTERM and SIGINT, and exits when they have stopped. If a worker dies the supervisor
stops the others and exits non-zero, so that whatever runs it (systemd, Kubernetes) restarts the
whole server instead of leaving it running on fewer cores than configured.

Metrics: each worker exports its own endpoint, on `metrics_port + i` for worker i (or a free
port each when `metrics_port` is 0). Scrape every one of them; Prometheus sums across targets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from topicproj.service.settings import Settings

log = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 300.0  # a worker loads (or, for the demo, finds) the model and warms up
KILL_AFTER_GRACE_S = 10.0  # past the grace period, a worker that has not exited is killed
ORPHAN_POLL_S = 0.5  # how often a worker checks that its supervisor is still there


@dataclass(frozen=True)
class WorkerReady:
    index: int
    pid: int
    port: int
    metrics_port: int | None
    version: str


@contextlib.contextmanager
def reserve_port(host: str, port: int) -> Iterator[int]:
    """Hold `host:port` (a free one when `port` is 0) with SO_REUSEPORT, without listening.

    The kernel routes connections only to listening sockets, so this one receives none; it
    keeps the port from being taken by anyone who does not also set SO_REUSEPORT, and gives
    every worker the same port when the user asked for any free one.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            raise OSError(f"cannot listen on {host}:{port}: {e.strerror}") from None
        yield int(sock.getsockname()[1])


def worker_settings(settings: Settings, index: int, port: int) -> Settings:
    metrics = settings.metrics_port
    if metrics:  # 0 (any free port) and None (no endpoint) stay as they are
        metrics += index
    return settings.model_copy(update={"port": port, "metrics_port": metrics, "workers": 1})


def _stop_when_orphaned(supervisor: int) -> None:
    """SIGTERM this worker once its supervisor is gone, even if it was SIGKILLed.

    Without this, killing the supervisor would leave the workers serving with nobody to stop
    them; a poll of the parent pid works on every POSIX system, unlike PR_SET_PDEATHSIG.
    """
    while os.getppid() == supervisor:
        time.sleep(ORPHAN_POLL_S)
    log.error("the supervisor (pid %d) is gone; stopping", supervisor)
    os.kill(os.getpid(), signal.SIGTERM)


def _worker_main(settings: Settings, index: int, reports: Any, supervisor: int) -> None:
    from .process import serve
    from .server import ProjectionServer

    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s %(levelname)s worker {index} %(name)s: %(message)s",
    )

    def ready(server: ProjectionServer) -> None:
        reports.put(
            WorkerReady(
                index, os.getpid(), server.port or 0, server.metrics_port, server.model.version_
            )
        )

    threading.Thread(target=_stop_when_orphaned, args=(supervisor,), daemon=True).start()
    asyncio.run(serve(settings, ready, reuse_port=True))


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stop_requested = threading.Event()
        self.procs: list[multiprocessing.process.BaseProcess] = []

    def _request_stop(self, signum: int, frame: Any) -> None:
        self.stop_requested.set()

    def run(self) -> int:
        from .loading import load_model, open_registry

        s = self.settings
        # Train the demo model here, once, instead of in N workers at the same time; with
        # --model this fails fast, before any worker starts, on a missing or damaged model.
        if s.model_root is not None:
            open_registry(s)
        else:
            load_model(s)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._request_stop)
        ctx = multiprocessing.get_context("spawn")
        reports = ctx.Queue()
        with reserve_port(s.host, s.port) as port:
            self.procs = [
                ctx.Process(
                    target=_worker_main,
                    args=(worker_settings(s, i, port), i, reports, os.getpid()),
                    name=f"topicproj-worker-{i}",
                )
                for i in range(s.workers)
            ]
            for p in self.procs:
                p.start()
            try:
                ready = self._wait_ready(reports)
                if ready is None:
                    return 1
                metrics = [str(r.metrics_port) for r in ready if r.metrics_port]
                pids = ", ".join(str(r.pid) for r in ready)
                print(
                    f"topicproj: serving model {ready[0].version} on {s.host}:{port} with "
                    f"{s.workers} workers (pids {pids})"
                    + (f", metrics on :{', :'.join(metrics)} (/metrics)" if metrics else ""),
                    flush=True,
                )
                return self._supervise()
            finally:
                self._stop_all()

    def _dead(self) -> list[multiprocessing.process.BaseProcess]:
        return [p for p in self.procs if p.exitcode is not None]

    def _wait_ready(self, reports: Any) -> list[WorkerReady] | None:
        ready: dict[int, WorkerReady] = {}
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while len(ready) < len(self.procs):
            if self.stop_requested.is_set():
                return None
            if dead := self._dead():
                log.error(
                    "worker %s exited with status %s while starting",
                    dead[0].name,
                    dead[0].exitcode,
                )
                return None
            if time.monotonic() > deadline:
                log.error("workers not serving after %.0f s", STARTUP_TIMEOUT_S)
                return None
            with contextlib.suppress(queue.Empty):
                r = reports.get(timeout=0.2)
                ready[r.index] = r
        return [ready[i] for i in sorted(ready)]

    def _supervise(self) -> int:
        sentinels = [p.sentinel for p in self.procs]
        while not self.stop_requested.is_set():
            multiprocessing.connection.wait(sentinels, timeout=0.5)
            if dead := self._dead():
                log.error(
                    "worker %s exited with status %s; stopping the others",
                    dead[0].name,
                    dead[0].exitcode,
                )
                return 1
        return 0

    def _stop_all(self) -> None:
        """SIGTERM to every live worker (a graceful stop), SIGKILL past the grace period."""
        for p in self.procs:
            if p.exitcode is None and p.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGTERM)
        s = self.settings
        deadline = time.monotonic() + s.drain_seconds + s.grace_seconds + KILL_AFTER_GRACE_S
        for p in self.procs:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.exitcode is None:
                log.error("worker %s ignored SIGTERM; killing it", p.name)
                p.kill()
                p.join()


def run(settings: Settings) -> int:
    """Serve until SIGTERM or SIGINT: in this process, or in `settings.workers` processes."""
    if settings.workers == 1:
        from .process import serve

        asyncio.run(serve(settings))
        return 0
    return Supervisor(settings).run()
