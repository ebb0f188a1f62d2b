"""The load itself: asyncio clients, in one or more processes, sending calls back to back."""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import multiprocessing
import os
import queue
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from topicproj.oip.v2 import grpc_predict_v2_pb2 as oip
from topicproj.v1 import topicproj_pb2 as pb

from .profiling import Profiler
from .scenarios import (
    CHANNEL_OPTIONS,
    ERROR_BACKOFF_S,
    MODEL_INFER,
    PROJECT,
    ROOT,
    Scenario,
    ServerConfig,
)
from .servers import ServerProcess
from .workload import RequestPool


@dataclass
class Result:
    scenario: Scenario
    config: ServerConfig
    seconds: float
    latencies: list[float] = field(default_factory=list)  # seconds, calls completed in window
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    server_cpu: float | None = None  # cores busy on average over the window
    client_cpu: float | None = None
    note: str = ""

    @property
    def requests_per_s(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def items_per_s(self) -> float:
        return self.requests_per_s * self.scenario.items

    def percentiles_ms(self) -> tuple[float, float, float]:
        if not self.latencies:
            return (math.nan, math.nan, math.nan)
        p50, p95, p99 = np.percentile(np.asarray(self.latencies), [50, 95, 99]) * 1000.0
        return (float(p50), float(p95), float(p99))


@dataclass
class ClientJob:
    """What one load-generator process needs: picklable, so it crosses a spawn boundary."""

    address: str
    requests: RequestPool
    items: int
    client_ids: list[int]  # which of the scenario's clients run in this process
    stride: int  # all clients of the scenario, so that each sends its own requests
    warmup: float
    duration: float
    timeout: float
    check_rows: bool
    form: str  # columnar, messages or oip (see workload.build_requests)
    clients_per_channel: int
    metadata: tuple[tuple[str, str], ...] = ()  # sent with every call


@dataclass
class ClientReport:
    latencies: list[float]
    errors: dict[str, int]
    cpu: float  # CPU seconds of this process over the measured window


async def _drive(job: ClientJob, ready: Any) -> ClientReport:
    """This process's clients back to back; calls completed inside the window are counted."""
    n_channels = math.ceil(len(job.client_ids) / job.clients_per_channel)
    channels = [
        grpc.aio.insecure_channel(job.address, options=CHANNEL_OPTIONS) for _ in range(n_channels)
    ]
    latencies: list[float] = []
    errors: collections.Counter[str] = collections.Counter()
    try:
        # Connect before the clock starts, so connection setup is not measured as latency.
        await asyncio.wait_for(asyncio.gather(*(c.channel_ready() for c in channels)), timeout=10.0)
        # request_serializer=None sends the pre-serialised bytes as they are.
        path, parse = (
            (MODEL_INFER, oip.ModelInferResponse.FromString)
            if job.form == "oip"
            else (PROJECT, pb.ProjectResponse.FromString)
        )
        calls = [
            c.unary_unary(path, request_serializer=None, response_deserializer=parse)
            for c in channels
        ]
        # Every process starts its clock together, after all have connected.
        await asyncio.get_running_loop().run_in_executor(None, ready.wait)
        start = time.monotonic()
        measure_from = start + job.warmup
        stop_at = measure_from + job.duration
        payloads, first_ids, last_ids = (
            job.requests.payloads,
            job.requests.first_ids,
            job.requests.last_ids,
        )
        n_requests = len(payloads)
        metadata = job.metadata or None

        async def client(slot: int, k: int) -> None:
            call = calls[slot // job.clients_per_channel]
            while (t0 := time.monotonic()) < stop_at:
                j = k % n_requests
                k += job.stride
                try:
                    response = await call(payloads[j], timeout=job.timeout, metadata=metadata)
                except grpc.aio.AioRpcError as e:
                    errors[e.code().name] += 1  # counted in warm-up too: an error is a bug
                    await asyncio.sleep(ERROR_BACKOFF_S)  # a dead server fails at once; don't spin
                    continue
                t1 = time.monotonic()
                if job.check_rows:
                    rows = response.projection_list.projections if job.form == "messages" else []
                    if job.form == "oip":
                        wrong = response.outputs[0].shape[0] != job.items
                    elif job.form == "columnar":
                        wrong = len(response.columns.known_keywords) != job.items
                    else:
                        wrong = (
                            len(rows) != job.items
                            or rows[0].id != first_ids[j]
                            or rows[-1].id != last_ids[j]
                        )
                    if wrong:
                        errors["WRONG_ROWS"] += 1
                        continue
                if measure_from <= t1 < stop_at:
                    latencies.append(t1 - t0)

        tasks = [asyncio.create_task(client(n, i)) for n, i in enumerate(job.client_ids)]
        try:
            await asyncio.sleep(measure_from - time.monotonic())
            c0 = time.process_time()
            await asyncio.sleep(stop_at - time.monotonic())
            c1 = time.process_time()
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
    finally:
        await asyncio.gather(*(c.close() for c in channels))
    return ClientReport(latencies, dict(errors), c1 - c0)


def _client_process(job: ClientJob, ready: Any, results: Any) -> None:
    try:
        results.put(("ok", asyncio.run(_drive(job, ready))))
    except BaseException as e:  # reported to the parent, which names it
        ready.abort()
        results.put(("error", repr(e)))


async def drive(
    server: ServerProcess,
    requests: RequestPool,
    scenario: Scenario,
    config: ServerConfig,
    args: argparse.Namespace,
    profile: Profiler | None = None,
) -> Result:
    """The scenario's clients, spread over `args.client_processes` processes of their own."""
    if config.via == "tritonclient":
        return await drive_tritonclient(server, requests, scenario, config, args)
    n_proc = max(1, min(args.client_processes, scenario.clients))
    ctx = multiprocessing.get_context("spawn")  # no forked grpc state in the children
    ready = ctx.Barrier(n_proc + 1)
    results = ctx.Queue()
    jobs = [
        ClientJob(
            server.address,
            requests,
            scenario.items,
            list(range(p, scenario.clients, n_proc)),
            scenario.clients,
            args.warmup,
            args.duration,
            args.timeout,
            check_rows=not config.noop,
            form=config.via or args.form,
            clients_per_channel=args.clients_per_channel,
            metadata=config.metadata,
        )
        for p in range(n_proc)
    ]
    procs = [ctx.Process(target=_client_process, args=(j, ready, results)) for j in jobs]
    for proc in procs:
        proc.start()
    result = Result(scenario, config, args.duration)
    loop = asyncio.get_running_loop()
    try:
        try:
            await loop.run_in_executor(None, ready.wait, 60.0)
        except threading.BrokenBarrierError:
            raise ClientsFailed(_collect(results, n_proc, 5.0)) from None
        start = time.monotonic()
        await asyncio.sleep(args.warmup)
        s0 = server.cpu_seconds()
        if profile is not None:
            profile.start(server.proc.pid if server.proc else 0, args.duration)
        await asyncio.sleep(max(0.0, start + args.warmup + args.duration - time.monotonic()))
        s1 = server.cpu_seconds()
        reports = await loop.run_in_executor(
            None, _collect, results, n_proc, args.duration + args.timeout + 30
        )
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
    failures = [r for r in reports if isinstance(r, str)]
    if failures:
        raise ClientsFailed(failures)
    client_cpu = 0.0
    for r in reports:
        assert isinstance(r, ClientReport)
        result.latencies.extend(r.latencies)
        result.errors.update(r.errors)
        client_cpu += r.cpu
    if s0 is not None and s1 is not None:
        result.server_cpu = (s1 - s0) / args.duration
    result.client_cpu = client_cpu / args.duration
    return result


class ClientsFailed(RuntimeError):
    pass


def _collect(results: Any, n: int, timeout: float) -> list[ClientReport | str]:
    out: list[ClientReport | str] = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        try:
            status, value = results.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            out.append("a client process sent no result")
            break
        out.append(value if status == "ok" else f"client process failed: {value}")
    return out


TRITONCLIENT_SCRIPT = Path(__file__).with_name("tritonclient_load.py")


def tritonclient_python() -> str:
    """tritonclient's own environment (it pins protobuf below 7): `make test` builds it."""
    path = os.environ.get("TOPICPROJ_TRITON_PYTHON") or str(ROOT / ".venv-oip" / "bin" / "python")
    if not Path(path).exists():
        raise ClientsFailed([f"no tritonclient environment at {path}: run `make .venv-oip/.stamp`"])
    return os.path.abspath(path)


async def drive_tritonclient(
    server: ServerProcess,
    requests: RequestPool,
    scenario: Scenario,
    config: ServerConfig,
    args: argparse.Namespace,
) -> Result:
    """The same scenario from tritonclient.grpc.aio, in one process of its own environment."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(requests.keywords, f)
    command = [
        tritonclient_python(),
        str(TRITONCLIENT_SCRIPT),
        *(server.address, f.name, str(scenario.clients), str(scenario.items)),
        *(str(args.warmup), str(args.duration), str(args.timeout)),
    ]
    try:
        proc = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        await asyncio.sleep(args.warmup)
        s0 = server.cpu_seconds()
        await asyncio.sleep(args.duration)
        s1 = server.cpu_seconds()
        out, err = await asyncio.wait_for(proc.communicate(), args.timeout + 60)
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        raise ClientsFailed([f"tritonclient load exited {proc.returncode}: {err.decode()[-2000:]}"])
    report = json.loads(out)
    result = Result(scenario, config, args.duration)
    result.latencies.extend(report["latencies"])
    result.errors.update(report["errors"])
    if s0 is not None and s1 is not None:
        result.server_cpu = (s1 - s0) / args.duration
    result.client_cpu = report["cpu"] / args.duration
    return result
