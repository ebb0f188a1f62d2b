"""Load generator for the projection service: batched against unbatched serving, in one run.

For every scenario (clients x items per request) and every server configuration (dynamic batching
as configured, and batching off with `max_batch_items=1`) it starts a fresh `topicproj serve`
process on a free port of 127.0.0.1, waits until the gRPC health check says SERVING, drives it
with N asyncio clients sending `Project` calls back to back for a warm-up and then a measured
window, and stops it with SIGTERM. The server runs in its own process so that the load
generator's event loop and GIL do not throttle it; on a machine with few cores the two still
compete for CPU, so the table also shows the CPU each side used.

    python -m benchmarks.load                       # 64 x 1 and 16 x 256, ~1.5 min
    python -m benchmarks.load --clients 128 --items-per-request 8 --duration 20
    python -m benchmarks.load --out benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime
import itertools
import math
import multiprocessing
import os
import platform
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from benchmarks.machine import command_line, cpu_name
from service.client import SEPARATOR, to_request
from topicproj.v1 import topicproj_pb2 as pb

ROOT = Path(__file__).resolve().parent.parent
TMDB = ROOT.parent / "shared" / "data" / "tmdb_5000_movies.csv.zip"
RUNS = ROOT / "runs"
HOST = "127.0.0.1"  # the only address this tool ever sends to
PROJECT = "/topicproj.v1.TopicProjection/Project"
DEFAULT_SCENARIOS = "64x1,16x256"

# One grpc.aio channel (one HTTP/2 connection) per 16 clients: a single connection funnels
# every call's frames through one transport, which can saturate before the server does, while a
# channel per client costs the client process more connections to poll than it gains. 16
# concurrent streams per connection is far under HTTP/2's default limit of 100.
CLIENTS_PER_CHANNEL = 16
CHANNEL_OPTIONS = [
    # Without a local subchannel pool, channels to the same target share one TCP connection
    # process-wide, which would defeat the point of having several.
    ("grpc.use_local_subchannel_pool", 1),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
]
# Requests kept pre-serialised per scenario; enough distinct ones that the server's vocabulary
# lookups see the whole pool, few enough to stay in memory at any request size.
MAX_POOL_ITEMS = 1 << 17
ERROR_BACKOFF_S = 0.01


# -- scenarios and configurations -------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    clients: int
    items: int

    @property
    def label(self) -> str:
        return f"{self.clients} × {self.items}"


@dataclass(frozen=True)
class ServerConfig:
    name: str
    flags: tuple[str, ...] = ()  # extra `topicproj serve` flags
    kind: str = "batched"  # batched, unbatched, noop, workersN, before: what comparisons key on
    noop: bool = False  # the ceiling server of benchmarks.noop_server instead of topicproj
    tree: Path | None = None  # run the server from this source tree (an older commit)
    train: bool = False  # a training job runs in the server while it is measured


def parse_scenarios(text: str) -> list[Scenario]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            clients, items = (int(x) for x in part.split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"scenario {part!r}: expected CLIENTSxITEMS, e.g. 64x1"
            ) from None
        if clients < 1 or items < 1:
            raise argparse.ArgumentTypeError(f"scenario {part!r}: both numbers must be >= 1")
        out.append(Scenario(clients, items))
    if not out:
        raise argparse.ArgumentTypeError("no scenario given")
    return out


SERVER_KINDS = ("batched", "unbatched", "noop", "before", "training", "workersN")
DEFAULT_SERVERS = "batched,unbatched,noop"


def parse_servers(text: str) -> list[str]:
    kinds = [k.strip().lower() for k in text.split(",") if k.strip()]
    for k in kinds:
        if k not in SERVER_KINDS[:5] and not (k.startswith("workers") and k[7:].isdigit()):
            raise argparse.ArgumentTypeError(
                f"server {k!r}: expected one of batched, unbatched, noop, before, training, "
                "workers2, workers4, ..."
            )
    if not kinds or kinds[0] != "batched":
        raise argparse.ArgumentTypeError(
            "the first server must be 'batched': the others are compared with it"
        )
    return kinds


def server_configs(
    kinds: Sequence[str],
    max_batch_items: int | None,
    max_wait_ms: float | None,
    before: tuple[str, Path] | None = None,
) -> list[ServerConfig]:
    from service.settings import Settings

    fields = Settings.model_fields
    items = max_batch_items if max_batch_items is not None else fields["max_batch_items"].default
    wait = max_wait_ms if max_wait_ms is not None else fields["max_wait_ms"].default
    # Passed explicitly (not left to the server's defaults) so the label is what actually ran.
    batching = ("--max-batch-items", str(items), "--max-wait-ms", str(wait))
    out = []
    for kind in kinds:
        if kind == "batched":
            out.append(ServerConfig(f"batched ({items} items, {wait:g} ms)", batching, kind))
        elif kind == "unbatched":
            out.append(ServerConfig("unbatched (1 item)", ("--max-batch-items", "1"), kind))
        elif kind == "noop":
            out.append(ServerConfig("no-op grpc.aio (ceiling)", (), kind, noop=True))
        elif kind == "training":
            out.append(ServerConfig("batched, while a job trains", batching, kind, train=True))
        elif kind == "before":
            assert before is not None
            ref, tree = before
            out.append(ServerConfig(f"batched, before (`{ref}`)", batching, kind, tree=tree))
        else:
            n = int(kind[7:])
            out.append(
                ServerConfig(f"batched, {n} workers", (*batching, "--workers", str(n)), kind)
            )
    return out


# -- keyword pool and model -------------------------------------------------------------------


@dataclass
class Pool:
    keywords: list[list[str]]
    source: str
    tmdb: bool


def keyword_pool(data: Path | None) -> Pool:
    """Items to send: TMDB (items with keywords only) if present, else the synthetic catalog."""
    path = data if data is not None else TMDB
    if path.exists():
        from models.catalog import read_catalog

        keywords = [k for k in read_catalog(path).keywords if k]
        shown = os.path.relpath(path, ROOT) if data is None else str(path)
        return Pool(keywords, shown, tmdb=data is None)
    if data is not None:
        raise SystemExit(f"{data}: no such file")
    from models.synthetic import make_synthetic_catalog

    keywords = [k for k in make_synthetic_catalog().catalog.keywords if k]
    return Pool(keywords, "synthetic catalog", tmdb=False)


def ensure_model(pool: Pool) -> Path:
    """A cached benchmark model under runs/, trained once (about 10 s on TMDB) if missing."""
    from models.artifacts import read_model_dir
    from models.errors import ModelDirectoryError
    from models.topic_model import TopicModel

    path = RUNS / ("bench-model-tmdb50" if pool.tmdb else "bench-model-synthetic12")
    try:
        read_model_dir(path)  # verifies every checksum, so a half-written cache is retrained
        return path
    except ModelDirectoryError as e:
        if path.exists():
            print(f"retraining the benchmark model: {e}", file=sys.stderr)
    print(f"training the benchmark model into {path} ...", file=sys.stderr, flush=True)
    if pool.tmdb:
        model = TopicModel(50, device="cpu").fit(pool.keywords)
    else:
        model = TopicModel(12, min_df=2, device="cpu").fit(pool.keywords)
    model.save(path, overwrite=True)  # written to a temp dir and renamed: never half a model
    return path


@dataclass
class RequestPool:
    payloads: list[bytes]
    first_ids: list[str]
    last_ids: list[str]


def build_requests(
    pool: Pool, scenario: Scenario, top_k: int, omit_dense: bool, seed: int, columnar: bool
) -> RequestPool:
    """Pre-serialised requests, so the clients spend no CPU building or encoding protobufs."""
    order = list(range(len(pool.keywords)))
    random.Random(seed).shuffle(order)
    m = scenario.items
    n = max(scenario.clients, math.ceil(len(order) / m))
    n = min(n, max(scenario.clients, MAX_POOL_ITEMS // m))
    req = RequestPool([], [], [])
    for j in range(n):
        rows = [order[(j * m + t) % len(order)] for t in range(m)]
        # Unique ids per request let the client check that it got its own rows back in order.
        ids = [f"{j}:{t}:{r}" for t, r in enumerate(rows)]
        items = [{"id": i, "keywords": pool.keywords[r]} for i, r in zip(ids, rows, strict=True)]
        request = to_request(items, top_k, omit_dense, columnar=columnar)
        req.payloads.append(request.SerializeToString())
        req.first_ids.append(ids[0])
        req.last_ids.append(ids[-1])
    return req


# -- the server process -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process and all its threads (Linux /proc), or None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU of a process and its direct children, which are alive now (Linux /proc)."""
    total = process_cpu_seconds(pid)
    if total is None:
        return None
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            text = stat.read_text()
            if int(text[text.rindex(")") + 2 :].split()[1]) == pid:
                total += process_cpu_seconds(int(stat.parent.name)) or 0.0
    return total


class ServerCrashed(RuntimeError):
    pass


class ServerProcess:
    def __init__(
        self, model: Path, config: ServerConfig, device: str | None, log_dir: Path, tag: str
    ) -> None:
        self.port = free_port()
        self.address = f"{HOST}:{self.port}"
        self.log_path = log_dir / f"server-{tag}.log"
        self.cwd = config.tree or ROOT
        if config.noop:
            self.command = [
                sys.executable,
                "-m",
                "benchmarks.noop_server",
                "--port",
                str(self.port),
            ]
        else:
            self.command = [
                sys.executable,
                "-m",
                "service.cli",
                "serve",
                "--model",
                str(model),
                "--host",
                HOST,
                "--port",
                str(self.port),
                "--no-metrics",
                *config.flags,
                *(
                    ("--model-root", str(log_dir / f"registry-{tag}"), "--data-root", str(log_dir))
                    if config.train
                    else ()
                ),
                *(("--device", device) if device else ()),
            ]
        self.proc: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    def launch(self) -> None:
        # TOPICPROJ_* variables from the caller's shell would silently change the configuration
        # being measured; the flags above are the whole configuration.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOPICPROJ_")}
        env["PYTHONUNBUFFERED"] = "1"  # a crash leaves its traceback in the log
        if self.cwd != ROOT:  # an older tree's code, generated proto included, wins the imports
            env["PYTHONPATH"] = os.pathsep.join([str(self.cwd), str(self.cwd / "proto")])
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    async def wait_serving(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        request = health_pb2.HealthCheckRequest(service="")
        async with grpc.aio.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                if self.proc.poll() is not None:
                    raise ServerCrashed(
                        f"server exited with status {self.proc.returncode} before SERVING\n"
                        + self.log_tail()
                    )
                if time.monotonic() > deadline:
                    raise ServerCrashed(
                        f"server not SERVING after {timeout:.0f} s\n" + self.log_tail()
                    )
                with contextlib.suppress(grpc.aio.AioRpcError):
                    reply = await stub.Check(request, timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                await asyncio.sleep(0.2)

    def cpu_seconds(self) -> float | None:
        """CPU of the server and its child processes (the workers of `--workers N`)."""
        if self.proc is None:
            return None
        return tree_cpu_seconds(self.proc.pid)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (a graceful stop), then SIGKILL if it has not exited within `timeout`."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(
                    f"server {self.address} ignored SIGTERM for {timeout:.0f} s; killing it",
                    file=sys.stderr,
                )
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        return self.returncode

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    " + line for line in text[-lines:])

    def log_problems(self) -> list[str]:
        """Lines of the server log that report an error (tracebacks, ERROR records)."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []
        return [ln for ln in text if " ERROR " in ln or ln.startswith("Traceback")]


@contextlib.contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    server.launch()
    try:
        yield server
    finally:
        server.stop()  # also on Ctrl-C or a crash of this process: no orphan servers


async def model_description(address: str) -> str:
    async with grpc.aio.insecure_channel(address) as channel:
        get_model = channel.unary_unary(
            "/topicproj.v1.TopicProjection/GetModel",
            request_serializer=pb.GetModelRequest.SerializeToString,
            response_deserializer=pb.ModelInfo.FromString,
        )
        info = await get_model(pb.GetModelRequest(top_keywords=1), timeout=10.0)
    return (
        f"version {info.version}, {info.topics} topics, {info.vocabulary_size} keywords, "
        f"{info.activation}, on {info.device}"
    )


# -- the load ---------------------------------------------------------------------------------


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
    columnar: bool
    clients_per_channel: int


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
        calls = [
            c.unary_unary(
                PROJECT,
                request_serializer=None,
                response_deserializer=pb.ProjectResponse.FromString,
            )
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

        async def client(slot: int, k: int) -> None:
            call = calls[slot // job.clients_per_channel]
            while (t0 := time.monotonic()) < stop_at:
                j = k % n_requests
                k += job.stride
                try:
                    response = await call(payloads[j], timeout=job.timeout)
                except grpc.aio.AioRpcError as e:
                    errors[e.code().name] += 1  # counted in warm-up too: an error is a bug
                    await asyncio.sleep(ERROR_BACKOFF_S)  # a dead server fails at once; don't spin
                    continue
                t1 = time.monotonic()
                if job.check_rows:
                    rows = response.projections
                    if job.columnar:
                        wrong = len(response.known_keywords) != job.items
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
            columnar=args.form == "columnar",
            clients_per_channel=args.clients_per_channel,
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


# -- profiling --------------------------------------------------------------------------------

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
    ("batching.py", "batching"),
    ("interceptors.py", "interceptor"),
    ("servicer.py", "servicer"),
    ("server.py (service", "compute"),
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


# -- a training job beside the load ---------------------------------------------------------

TRAINING_CATALOG = "training-catalog.jsonl"
TRAINING_TOPICS = 50


def write_training_catalog(pool: Pool, path: Path) -> None:
    import json

    with open(path, "w", encoding="utf-8") as f:
        for i, keywords in enumerate(pool.keywords):
            f.write(json.dumps({"id": str(i), "keywords": keywords}) + "\n")


async def start_training(address: str) -> str:
    """Start a job on the pool's items (the server's data root holds them); its id."""
    async with grpc.aio.insecure_channel(address) as channel:
        start = channel.unary_unary(
            "/topicproj.v1.TopicProjection/StartTraining",
            request_serializer=pb.TrainRequest.SerializeToString,
            response_deserializer=pb.TrainingJob.FromString,
        )
        request = pb.TrainRequest(catalog_path=TRAINING_CATALOG, topics=TRAINING_TOPICS)
        job = await start(request, timeout=10.0)
    return str(job.id)


async def end_training(address: str, job_id: str) -> str:
    """Cancel the job; what it was doing at the end of the window, for the notes."""
    async with grpc.aio.insecure_channel(address) as channel:
        cancel = channel.unary_unary(
            "/topicproj.v1.TopicProjection/CancelTrainingJob",
            request_serializer=pb.TrainingJobRequest.SerializeToString,
            response_deserializer=pb.TrainingJob.FromString,
        )
        job = await cancel(pb.TrainingJobRequest(job_id=job_id), timeout=10.0)
    state = pb.TrainingJob.State.Name(job.state)
    return (
        f"the training job ({TRAINING_TOPICS} topics on the keyword pool) was {state} at the "
        f"end of the window, at epoch {job.epoch}"
        + ("" if state == "RUNNING" else "; it did not train through the whole window")
    )


# -- the in-process ceiling --------------------------------------------------------------------

IN_PROCESS_SECONDS = 2.0


def request_keywords(request: pb.ProjectRequest) -> list[list[str]]:
    """The keyword lists of a request in either form."""
    if not request.packed_counts:
        return [list(item.keywords) for item in request.items]
    flat = request.packed_keywords.split(SEPARATOR)
    bounds = itertools.accumulate(request.packed_counts, initial=0)
    return [flat[a:b] for a, b in itertools.pairwise(bounds)]


def in_process_rate(model_dir: Path, requests: RequestPool) -> float:
    """Items/s of mapping and projecting the scenario's requests in this process, no gRPC.

    The same requests, one `map_batch` and one `project_batch` each: what serving them costs
    without the network, parsing, batching or responses, so served / in-process says how much
    of the work the service adds.
    """
    import torch

    from models.topic_model import TopicModel

    model = TopicModel.load(model_dir, device="cpu")
    keywords = [request_keywords(pb.ProjectRequest.FromString(p)) for p in requests.payloads]
    vocabulary = model.vocabulary_
    items = 0
    start = time.perf_counter()
    with torch.inference_mode():
        while (elapsed := time.perf_counter() - start) < IN_PROCESS_SECONDS:
            for kws in keywords:
                model.project_batch(vocabulary.map_batch(kws))
                items += len(kws)
    return items / elapsed


# -- reporting --------------------------------------------------------------------------------


def _fmt(x: float, digits: int = 0) -> str:
    return "-" if math.isnan(x) else f"{x:,.{digits}f}"


def _ratio(x: float, y: float) -> str:
    return "-" if not y or math.isnan(x) or math.isnan(y) else f"{x / y:.2f}×"


def _comparable(a: Result | None, b: Result | None) -> bool:
    # A ratio against a run whose server failed would compare a bug, not a configuration.
    return all(r is not None and not r.note and r.latencies for r in (a, b))


def table(results: Sequence[Result], in_process: dict[Scenario, float]) -> list[str]:
    lines = [
        "| clients × items | server | requests/s | items/s | p50 ms | p95 ms | p99 ms | errors "
        "| server CPU | client CPU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def cores(x: float | None) -> str:
        return "-" if x is None else f"{x:.2f}"

    by_scenario: dict[Scenario, list[Result]] = collections.defaultdict(list)
    for r in results:
        by_scenario[r.scenario].append(r)
    for scenario, rs in by_scenario.items():
        for r in rs:
            p50, p95, p99 = r.percentiles_ms()
            errors = sum(r.errors.values())
            err = str(errors) + (
                " (" + ", ".join(f"{k} {v}" for k, v in sorted(r.errors.items())) + ")"
                if errors
                else ""
            )
            name = r.config.name + (f" — {r.note}" if r.note else "")
            lines.append(
                f"| {scenario.label} | {name} | {_fmt(r.requests_per_s)} | {_fmt(r.items_per_s)} "
                f"| {_fmt(p50, 1)} | {_fmt(p95, 1)} | {_fmt(p99, 1)} | {err} "
                f"| {cores(r.server_cpu)} | {cores(r.client_cpu)} |"
            )
        by_kind = {r.config.kind: r for r in rs}
        base = by_kind.get("batched")
        for kind, label in [
            ("unbatched", "batched / unbatched"),
            ("noop", "batched / no-op"),
            ("before", "batched / before"),
            ("training", "batched / while a job trains"),
        ]:
            other = by_kind.get(kind)
            if _comparable(base, other):
                assert base is not None and other is not None
                b, o = base.percentiles_ms(), other.percentiles_ms()
                lines.append(
                    f"| {scenario.label} | *{label}* "
                    f"| {_ratio(base.requests_per_s, other.requests_per_s)} "
                    f"| {_ratio(base.items_per_s, other.items_per_s)} "
                    f"| {_ratio(b[0], o[0])} | {_ratio(b[1], o[1])} | {_ratio(b[2], o[2])} "
                    "| | | |"
                )
        for kind, r in by_kind.items():
            if kind.startswith("workers") and _comparable(r, base):
                assert base is not None
                lines.append(
                    f"| {scenario.label} | *{r.config.name} / 1 worker* "
                    f"| {_ratio(r.requests_per_s, base.requests_per_s)} "
                    f"| {_ratio(r.items_per_s, base.items_per_s)} | | | | | | |"
                )
        if (rate := in_process.get(scenario)) and _comparable(base, base):
            assert base is not None
            lines.append(
                f"| {scenario.label} | in-process (map + project) | | {_fmt(rate)} | | | | | | |"
            )
            lines.append(
                f"| {scenario.label} | *batched / in-process* | "
                f"| {_ratio(base.items_per_s, rate)} | | | | | | |"
            )
    return lines


def profile_table(scenario: Scenario, config: ServerConfig, profiler: Profiler) -> list[str]:
    shares, busy = profiler.breakdown()
    return [
        f"Where the GIL time of the server goes, {scenario.label}, {config.name} (py-spy "
        f"--gil, {Profiler.RATE} Hz over the measured window; the GIL was held "
        f"{busy:.0%} of the time):",
        "",
        "| part | share of GIL samples |",
        "|---|---:|",
        *(f"| {c} | {share:.1%} |" for c, share in shares),
        "",
        "",
    ]


# -- main -------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.load",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument(
        "--scenarios",
        type=parse_scenarios,
        help=f"CLIENTSxITEMS,... (default {DEFAULT_SCENARIOS}, or the one given by --clients "
        "and --items-per-request)",
    )
    p.add_argument("--clients", type=int, help="concurrent clients, one scenario (default 64)")
    p.add_argument(
        "--items-per-request", type=int, help="items per request, one scenario (default 1)"
    )
    p.add_argument(
        "--duration", type=float, default=10.0, help="measured seconds per run (default 10)"
    )
    p.add_argument(
        "--warmup", type=float, default=2.0, help="unmeasured seconds before that (default 2)"
    )
    p.add_argument("--model", type=Path, help="model directory (default: a cached one in runs/)")
    p.add_argument(
        "--data",
        type=Path,
        help="catalog for the keyword pool (default ../shared/data/tmdb_5000_movies.csv.zip "
        "if present, else the synthetic catalog)",
    )
    p.add_argument(
        "--servers",
        type=parse_servers,
        default=parse_servers(DEFAULT_SERVERS),
        help=f"servers to compare, the first 'batched' (default {DEFAULT_SERVERS}; also "
        "workersN: the batched server with --workers N)",
    )
    p.add_argument(
        "--client-processes",
        type=int,
        default=1,
        help="processes the clients are spread over (default 1)",
    )
    p.add_argument(
        "--before",
        default="HEAD~1",
        help="git revision the 'before' server runs from (default HEAD~1); it gets requests "
        "in the form it knows, so use it with --form messages",
    )
    p.add_argument(
        "--clients-per-channel",
        type=int,
        default=CLIENTS_PER_CHANNEL,
        help="clients sharing one HTTP/2 connection (default %(default)s); with --workers the "
        "kernel spreads connections, not calls, so fewer clients per channel spread better",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="sample the batched server with py-spy over the measured window and report "
        "where its GIL time goes",
    )
    p.add_argument("--max-batch-items", type=int, help="batched server (default: its default)")
    p.add_argument("--max-wait-ms", type=float, help="batched server (default: its default)")
    p.add_argument("--device", help="server device (default: the server's, auto)")
    p.add_argument(
        "--form",
        choices=("columnar", "messages"),
        default="columnar",
        help="columnar: packed requests and columnar answers, what the Python clients send; "
        "messages: one Item and one Projection message per item, dense_bytes set "
        "(default columnar)",
    )
    p.add_argument("--top-k", type=int, default=0, help="top_k of every request (default 0)")
    p.add_argument("--omit-dense", action="store_true", help="set omit_dense in every request")
    p.add_argument(
        "--timeout", type=float, default=30.0, help="deadline of each call, seconds (default 30)"
    )
    p.add_argument(
        "--startup-timeout", type=float, default=120.0, help="seconds to SERVING (default 120)"
    )
    p.add_argument("--seed", type=int, default=0, help="shuffle of the keyword pool (default 0)")
    p.add_argument("--out", type=Path, help="append the results (Markdown) to this file")
    return p


def resolve_scenarios(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Scenario]:
    single = args.clients is not None or args.items_per_request is not None
    if args.scenarios is not None:
        if single:
            parser.error("give either --scenarios or --clients/--items-per-request, not both")
        return list(args.scenarios)
    if single:
        clients = args.clients if args.clients is not None else 64
        items = args.items_per_request if args.items_per_request is not None else 1
        if clients < 1 or items < 1:
            parser.error("--clients and --items-per-request must be >= 1")
        return [Scenario(clients, items)]
    return parse_scenarios(DEFAULT_SCENARIOS)


async def run(args: argparse.Namespace, scenarios: list[Scenario]) -> int:
    wall_start = time.perf_counter()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    pool = keyword_pool(args.data)
    model = Path(args.model).resolve() if args.model is not None else ensure_model(pool)
    with contextlib.ExitStack() as stack:
        before = None
        if "before" in args.servers:
            before = (args.before, stack.enter_context(checkout(args.before)))
        configs = server_configs(args.servers, args.max_batch_items, args.max_wait_ms, before)
        return await _run(args, scenarios, pool, model, configs, wall_start, load_before)


@contextlib.contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """The project at `revision`, in a temporary git worktree removed afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="topicproj-before-"))
    tree = tmp / "tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), revision],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    try:
        yield tree
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True
        )
        shutil.rmtree(tmp, ignore_errors=True)


async def _run(
    args: argparse.Namespace,
    scenarios: list[Scenario],
    pool: Pool,
    model: Path,
    configs: list[ServerConfig],
    wall_start: float,
    load_before: float,
) -> int:
    results: list[Result] = []
    problems: list[str] = []
    profiles: list[str] = []
    notes: list[str] = []
    in_process: dict[Scenario, float] = {}
    model_info = ""
    with tempfile.TemporaryDirectory(prefix="topicproj-load-") as tmp:
        if any(c.train for c in configs):
            write_training_catalog(pool, Path(tmp) / TRAINING_CATALOG)
        for scenario in scenarios:
            requests = build_requests(
                pool, scenario, args.top_k, args.omit_dense, args.seed, args.form == "columnar"
            )
            in_process[scenario] = in_process_rate(model, requests)
            # A fresh server per run: no run inherits another's queue, threads or allocations.
            for n, config in enumerate(configs):
                tag = f"{scenario.clients}x{scenario.items}-{n}"
                print(f"{scenario.label}, {config.name}: ", end="", file=sys.stderr, flush=True)
                server = ServerProcess(model, config, args.device, Path(tmp), tag)
                result = Result(scenario, config, args.duration)
                profiler = Profiler(RUNS / "profiles", tag) if args.profile and n == 0 else None
                with running(server):
                    try:
                        await server.wait_serving(args.startup_timeout)
                        if not model_info and not config.noop:
                            model_info = await model_description(server.address)
                        job = await start_training(server.address) if config.train else None
                        result = await drive(server, requests, scenario, config, args, profiler)
                        if job is not None:
                            notes.append(
                                f"{scenario.label}, {config.name}: "
                                + await end_training(server.address, job)
                            )
                    except ServerCrashed as e:
                        result.note = "server did not start"
                        problems.append(f"{scenario.label}, {config.name}: {e}")
                    except (TimeoutError, grpc.aio.AioRpcError, ClientsFailed) as e:
                        result.note = "no connection"
                        problems.append(
                            f"{scenario.label}, {config.name}: {e!r}\n{server.log_tail()}"
                        )
                    alive = server.proc is not None and server.proc.poll() is None
                if profiler is not None and not result.note:
                    profiles += profile_table(scenario, config, profiler)
                if not alive and not result.note:
                    result.note = f"server died (status {server.returncode})"
                    problems.append(
                        f"{scenario.label}, {config.name}: server exited with status "
                        f"{server.returncode} during the run\n{server.log_tail()}"
                    )
                elif server.returncode not in (0, None) and not result.note:
                    problems.append(
                        f"{scenario.label}, {config.name}: server exited with status "
                        f"{server.returncode} after SIGTERM\n{server.log_tail()}"
                    )
                if bad := server.log_problems():
                    problems.append(
                        f"{scenario.label}, {config.name}: {len(bad)} error lines in the "
                        f"server log\n{server.log_tail()}"
                    )
                if result.errors:
                    problems.append(
                        f"{scenario.label}, {config.name}: failed calls {dict(result.errors)}"
                    )
                results.append(result)
                print(
                    f"{result.requests_per_s:,.0f} requests/s, "
                    f"{sum(result.errors.values())} errors",
                    file=sys.stderr,
                )

    mean_kw = sum(map(len, pool.keywords)) / max(len(pool.keywords), 1)
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    model_path = Path(model).resolve()
    model_shown = str(model_path.relative_to(ROOT) if model_path.is_relative_to(ROOT) else model)
    text = [
        "```sh",
        command_line("benchmarks.load", args.argv),
        "```",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu_name()}), {platform.system()}, "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}; {date}; "
        f"1-minute load average {load_before:.2f} before the run.",
        f"Model: `{model_shown}` ({model_info or 'not reached'}). Keyword pool: "
        f"{pool.source}, {len(pool.keywords)} items with keywords, {mean_kw:.1f} keywords each.",
        f"Each row: a fresh `topicproj serve` process on 127.0.0.1, {args.warmup:g} s warm-up, "
        f"then {args.duration:g} s measured; clients send back to back over one HTTP/2 "
        f"connection per {args.clients_per_channel} clients, from {args.client_processes} "
        f"load-generator process(es); requests in the {args.form} form"
        + (f", top_k {args.top_k}" if args.top_k else "")
        + (", omit_dense" if args.omit_dense else "")
        + ". Errors count every failed call, "
        "warm-up included; CPU is cores busy on average over the measured window. "
        f"Wall time {time.perf_counter() - wall_start:.0f} s.",
        "",
        *table(results, in_process),
        "",
        *(f"- {n}" for n in notes),
        *([""] if notes else []),
        *profiles,
        "",  # a blank line after the table, so text appended next is not read as a row
    ]
    block = "\n".join(text)
    print(block)
    if args.out is not None:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(block)
    for p in problems:
        print(f"PROBLEM: {p}", file=sys.stderr)
    return 1 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    scenarios = resolve_scenarios(args, parser)
    if "before" in args.servers and args.form != "messages":
        parser.error("the 'before' server may not know the packed form: add --form messages")
    if args.client_processes < 1 or args.clients_per_channel < 1:
        parser.error("--client-processes and --clients-per-channel must be >= 1")
    if args.duration <= 0 or args.warmup < 0:
        parser.error("--duration must be > 0 and --warmup >= 0")
    # SIGTERM unwinds like Ctrl-C, so the `running` blocks still stop the servers we started.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return asyncio.run(run(args, scenarios))
    except KeyboardInterrupt:
        print("interrupted; servers stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
