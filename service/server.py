"""The asyncio gRPC server: projection service, health checking, reflection, metrics, shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

import grpc
import numpy as np
import torch
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from models.registry import ModelRegistry, Refused
from models.topic_model import TopicModel
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from .auth import AuthInterceptor, server_credentials
from .batching import Batcher
from .errors import ModelVersionNotFound, NoModelRoot
from .interceptors import ErrorAndMetricsInterceptor
from .metrics import DeadTopicTracker, ServiceMetrics
from .servicer import Projected, TopicProjectionServicer
from .settings import Settings
from .training_jobs import TrainingJobs
from .validation import Bags

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["TopicProjection"].full_name
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class ProjectionServer:
    """One server process: the model, its batcher, and the gRPC and metrics endpoints."""

    def __init__(
        self,
        model: TopicModel,
        settings: Settings,
        metrics: ServiceMetrics | None = None,
        *,
        reuse_port: bool = False,
        registry: ModelRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or ServiceMetrics()
        self.registry = registry
        # The model and its dead-topic tracker, swapped together in one assignment: a batch
        # reads the pair once and is projected wholly by that version.
        self._serving = (model, DeadTopicTracker(model.n_topics, settings.dead_topic_window))
        self._activating = asyncio.Lock()
        self.jobs: TrainingJobs | None = None
        # grpc shares a port with any other process that binds it with SO_REUSEPORT, which is on
        # by default: a second server on a busy port would start and take half its traffic.
        # Only `--workers N` means to share it.
        self.reuse_port = reuse_port
        self.port: int | None = None
        self.metrics_port: int | None = None
        self._metrics_server: Any = None
        self._server: grpc.aio.Server | None = None
        self._batcher: Batcher[Bags, Projected] | None = None
        self.health = health.aio.HealthServicer()

    @property
    def model(self) -> TopicModel:
        return self._serving[0]

    @property
    def dead_topics(self) -> DeadTopicTracker:
        return self._serving[1]

    def compute(self, requests: list[Bags]) -> list[Projected | Exception]:
        """Map and project the requests of one batch together, and record their sparsity.

        Runs in the batcher's worker thread: one vectorised keyword mapping and one projection
        for the whole batch, then each request gets its rows back.
        """
        keywords: list[str] = []
        for r in requests:
            keywords += r.keywords
        counts = np.concatenate([r.counts for r in requests])
        weights = None
        if any(r.weights is not None for r in requests):
            weights = np.concatenate(
                [
                    r.weights if r.weights is not None else np.ones(len(r.keywords), np.float32)
                    for r in requests
                ]
            )
        model, dead_topics = self._serving  # one version for the whole batch
        version = model.version_
        batch = model.vocabulary_.map_flat(keywords, counts, weights)
        Y = model.project_batch(batch).cpu().numpy()  # (items, topics)
        known, unknown = batch.known, batch.unknown
        self.metrics.observe_projections(Y, known, unknown)
        self.metrics.dead_topics.set(dead_topics.update(Y))
        out: list[Projected | Exception] = []
        row = 0
        for r in requests:
            end = row + len(r)
            if r.model_version and r.model_version != version:  # swapped since it was checked
                out.append(ModelVersionNotFound(r.model_version, version))
            else:
                out.append(Projected(Y[row:end], known[row:end], unknown[row:end], version))
            row = end
        return out

    async def activate(self, version: str) -> TopicModel:
        """Serve `version` of the registry from now on: load, verify, warm up, then swap.

        Batches already computing finish on the old model; the swap is one assignment.
        """
        if self.registry is None:
            raise NoModelRoot()
        loop = asyncio.get_running_loop()
        async with self._activating:  # one activation at a time, in the order asked
            model = await loop.run_in_executor(
                None, self.registry.load, version, self.settings.device
            )
            await loop.run_in_executor(None, warm_up, model)
            await loop.run_in_executor(None, self.registry.activate, version)
            self._serving = (
                model,
                DeadTopicTracker(model.n_topics, self.settings.dead_topic_window),
            )
            self._describe(model)
            self.metrics.model_swaps.inc()
        log.info("now serving model version %s", version)
        return model

    def _describe(self, model: TopicModel) -> None:
        self.metrics.model.info(
            {
                "version": model.version_,
                "topics": str(model.n_topics),
                "vocabulary_size": str(len(model.vocabulary_)),
                "activation": model.activation,
                "device": str(model.device_),
            }
        )

    async def start(self) -> None:
        s = self.settings
        self._batcher = Batcher(
            self.compute,
            max_batch_items=s.max_batch_items,
            max_wait_ms=s.max_wait_ms,
            max_queue_items=s.max_queue_items,
            metrics=self.metrics,
            wait_when_idle=s.wait_when_idle,
        )
        options = [
            ("grpc.max_receive_message_length", s.max_message_bytes),
            ("grpc.max_send_message_length", s.max_message_bytes),
            ("grpc.so_reuseport", int(self.reuse_port)),
        ]
        interceptors: list[grpc.aio.ServerInterceptor] = [ErrorAndMetricsInterceptor(self.metrics)]
        if s.auth_token is not None:  # inside the metrics interceptor: refusals are counted
            interceptors.append(
                AuthInterceptor(s.auth_token.get_secret_value(), protect_all=s.auth_all)
            )
        server = grpc.aio.server(interceptors=interceptors, options=options)
        servicer = TopicProjectionServicer(self, self._batcher)
        pb_grpc.add_TopicProjectionServicer_to_server(servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        await self._set_health(NOT_SERVING)
        try:
            address = f"{s.host}:{s.port}"
            if s.tls_cert is not None and s.tls_key is not None:
                creds = server_credentials(s.tls_cert, s.tls_key)
                self.port = server.add_secure_port(address, creds)
            else:
                self.port = server.add_insecure_port(address)
        except RuntimeError:  # grpc's "Failed to bind", with the reason only in its debug log
            self.port = 0
        if self.port == 0:
            raise OSError(
                f"cannot listen on {s.host}:{s.port}: the port is in use, or the address is "
                "not one of this machine's"
            )
        self._server = server
        if s.metrics_port is not None:
            self._metrics_server, _ = start_http_server(
                s.metrics_port, addr=s.host, registry=self.metrics.registry
            )
            self.metrics_port = self._metrics_server.server_address[1]
        self._describe(self.model)
        if self.registry is not None:
            self.jobs = TrainingJobs(
                model_root=self.registry.root,
                data_root=s.data_root,
                device=s.device,
                max_queued=s.max_queued_jobs,
                max_upload_bytes=s.max_upload_bytes,
                activate=self.activate,
                upload_ttl_s=s.upload_ttl_hours * 3600.0,
            )
            self.jobs.start()
        self._batcher.start()
        await server.start()
        # Warm up the model (first-call allocations, CUDA context) before SERVING, outside the
        # batcher so that the warm-up is not counted in the metrics.
        await asyncio.get_running_loop().run_in_executor(None, warm_up, self.model)
        await self._set_health(SERVING)
        log.info("serving %s on %s:%d", self.model.version_, s.host, self.port)

    async def _set_health(self, status: int) -> None:
        for name in ("", SERVICE_NAME):
            await self.health.set(name, status)

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let in-flight RPCs finish within `grace` seconds, then close."""
        grace = self.settings.grace_seconds if grace is None else grace
        await self.health.enter_graceful_shutdown()  # NOT_SERVING, and stays so
        if self._server is not None:
            await self._server.stop(grace)
        if self._batcher is not None:
            await self._batcher.stop()
        if self.jobs is not None:
            await self.jobs.stop()  # a running job's process is stopped; its model is not kept
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
            self._metrics_server.server_close()
        log.info("stopped")

    async def wait_for_termination(self) -> None:
        assert self._server is not None
        await self._server.wait_for_termination()


def warm_up(model: TopicModel) -> None:
    """First-call allocations (and the CUDA context) happen here, not in a client's request."""
    model.project_batch(model.vocabulary_.map_batch([model.vocabulary_.keywords[:2]]))


def open_registry(settings: Settings) -> tuple[TopicModel, ModelRegistry, list[Refused]]:
    """The registry under --model-root and the version to serve from it.

    With --model as well, that model joins the registry (stored once, by its content) and
    becomes active if nothing is yet. Versions that fail to load are refused and reported; the
    server falls back to the newest one that loads.
    """
    assert settings.model_root is not None
    registry = ModelRegistry(settings.model_root)
    if settings.model is not None:
        version = registry.add(settings.model)
        if registry.active() is None:
            registry.activate(version)
    elif registry.active() is None and not registry.versions():
        # An empty root: start it with the demo model, so that the server has something.
        registry.activate(registry.add(load_model(settings)))
    model, refused = registry.load_active(settings.device)
    return model, registry, refused


def load_model(settings: Settings) -> TopicModel:
    """The model to serve: --model, or the demo model (trained on the synthetic catalog)."""
    if settings.model is not None and settings.model_root is None:
        return TopicModel.load(settings.model, device=settings.device)
    from models.errors import ModelDirectoryError
    from models.synthetic import make_synthetic_catalog

    path = settings.demo_model_dir
    if path.exists():
        try:
            model = TopicModel.load(path, device=settings.device)
            log.info("using the demo model at %s", path)
            return model
        except ModelDirectoryError as e:
            log.warning("retraining the demo model: %s", e)
    log.info("training the demo model on the synthetic catalog (a few seconds)")
    catalog = make_synthetic_catalog().catalog
    # A higher learning rate and fewer epochs than the defaults: the demo must start in
    # seconds even on a busy 2-core machine; `make demo-model` trains the same recipe.
    demo = TopicModel(
        12, min_df=2, learning_rate=5e-3, max_epochs=60, device=settings.device, verbose=True
    ).fit(catalog.keywords)
    demo.save(path, overwrite=True)
    return TopicModel.load(path, device=settings.device)


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
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    tune_interpreter()
    ready(server)
    await stop.wait()
    log.info("shutting down: in-flight requests get %.1f s", settings.grace_seconds)
    await server.stop()
