"""The gRPC endpoint of one server process: servicers, interceptors, health, reflection, metrics.

It wires the parts together and owns their lifetimes; the model lives in `ModelHolder`, the
batching in `Batcher`, the jobs in `TrainingJobs`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import sys
import time
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from topicproj.models.core.topic_model import TopicModel
from topicproj.models.store.registry import ModelRegistry
from topicproj.oip.v2 import grpc_predict_v2_pb2 as oip
from topicproj.oip.v2 import grpc_predict_v2_pb2_grpc as oip_grpc
from topicproj.service.jobs.queue import TrainingJobs
from topicproj.service.metrics import ServiceMetrics
from topicproj.service.settings import Settings
from topicproj.service.version import package_version
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from . import tracing
from .auth import AuthInterceptor, server_credentials
from .batching import Batcher, Lanes, QueueCount
from .holder import ModelHolder, Projected, warm_up
from .interceptors import ErrorAndMetricsInterceptor
from .limits import OFF_LOOP_KEYWORDS, KeywordBudget
from .oip import OpenInferenceServicer
from .servicer import TopicProjectionServicer
from .tracing import Tracing
from .traffic import TrafficProfiles
from .validation import Bags

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["TopicProjectionService"].full_name
OIP_SERVICE_NAME = oip.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
# A client that keeps a connection alive pings it; grpc's default refuses pings more often than
# every 5 minutes and then closes the connection. The clients ping every 30 s (client/channel.py).
MIN_CLIENT_PING_INTERVAL_MS = 20_000
# A health service that stays SERVING while the server drains, for liveness probes: a draining
# server is healthy, only no longer ready (what "" and the named services say).
LIVENESS = "liveness"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only."""
    name = host.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def exposure_warnings(s: Settings) -> list[str]:
    """What an operator should hear about a server that listens beyond this machine."""
    if is_loopback(s.host):
        return []
    out = []
    if s.auth_token is None:
        out.append(
            f"listening on {s.host} with no auth token: anyone who reaches the port may "
            "activate models, start training and upload catalogs (set TOPICPROJ_AUTH_TOKEN)"
        )
    if s.tls_cert is None:
        out.append(
            f"listening on {s.host} without TLS: requests"
            + (" and the auth token" if s.auth_token is not None else "")
            + " cross the network in the clear (set --tls-cert and --tls-key)"
        )
    return out


class ProjectionServer:
    """The gRPC and metrics endpoints of one process, and the parts behind them."""

    def __init__(
        self,
        model: TopicModel,
        settings: Settings,
        metrics: ServiceMetrics | None = None,
        *,
        reuse_port: bool = False,
        registry: ModelRegistry | None = None,
        tracer_provider: Any = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or ServiceMetrics(version=package_version())
        # Tracing when asked for: a provider given here (tests), or one configured from OTEL_*.
        self.tracing: Tracing | None = None
        if tracer_provider is not None or tracing.wanted(settings.tracing):
            self.tracing = Tracing(tracer_provider or tracing.default_provider())
        self.registry = registry
        self.holder = ModelHolder(
            model,
            self.metrics,
            device=settings.device,
            dead_topic_window=settings.dead_topic_window,
            registry=registry,
        )
        # The traffic profile: fed by the batcher after each batch, read by GetTraffic and the
        # metrics endpoint.
        self.traffic: TrafficProfiles | None = None
        if settings.traffic_profile:
            self.traffic = TrafficProfiles(self.holder, settings)
            self.metrics.watch_traffic(self.traffic.report, settings.traffic_topic_series)
        self.jobs: TrainingJobs | None = None
        # grpc shares a port with any other process that binds it with SO_REUSEPORT, which is on
        # by default: a second server on a busy port would start and take half its traffic.
        # Only `--workers N` means to share it.
        self.reuse_port = reuse_port
        self.port: int | None = None
        self.metrics_port: int | None = None
        self._metrics_server: Any = None
        self._server: grpc.aio.Server | None = None
        self._batcher: Lanes[Bags, Projected] | None = None
        self.health = health.aio.HealthServicer()
        self.serving = False  # what health says: SERVING only once warmed up, until shutdown

    @property
    def model(self) -> TopicModel:
        return self.holder.model

    async def start(self) -> None:
        s = self.settings
        sys.setswitchinterval(s.switch_interval_ms / 1000)

        queued = QueueCount()

        def lane() -> Batcher[Bags, Projected]:
            return Batcher(
                self.holder.compute,
                record=self.holder.record,
                max_batch_items=s.max_batch_items,
                max_wait_ms=s.max_wait_ms,
                max_queue_items=s.max_queue_items,
                metrics=self.metrics,
                wait_when_idle=s.wait_when_idle,
                retry_delay_ms=s.retry_delay_ms,
                tracing=self.tracing,
                after=self.traffic.record if self.traffic is not None else None,
                direct_items=s.direct_items,
                direct_inline_keywords=s.direct_inline_keywords,
                queued=queued,
            )

        # Requests small enough to decode on the event loop get a lane of their own: a
        # one-keyword request must not wait for a batch of 65,536 keywords to compute.
        self._batcher = Lanes(lane(), lane(), OFF_LOOP_KEYWORDS)
        options = [
            ("grpc.max_receive_message_length", s.max_receive_bytes),
            ("grpc.max_send_message_length", s.max_message_bytes),
            ("grpc.so_reuseport", int(self.reuse_port)),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", MIN_CLIENT_PING_INTERVAL_MS),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.max_connection_idle_ms", round(s.max_connection_idle_seconds * 1000)),
            ("grpc.max_concurrent_streams", s.max_concurrent_streams),
        ]
        if s.max_connection_age_seconds is not None:
            # Each connection gets a GOAWAY after this age (grpc adds jitter), and the client
            # reconnects, possibly to another replica: long-lived HTTP/2 connections otherwise
            # stay on one pod forever behind a Kubernetes Service.
            options += [
                ("grpc.max_connection_age_ms", round(s.max_connection_age_seconds * 1000)),
                (
                    "grpc.max_connection_age_grace_ms",
                    round(s.max_connection_age_grace_seconds * 1000),
                ),
            ]
        self._calls = ErrorAndMetricsInterceptor(self.metrics, self.tracing)
        interceptors: list[grpc.aio.ServerInterceptor] = [self._calls]
        if s.auth_token is not None:  # inside the metrics interceptor: refusals are counted
            interceptors.append(
                AuthInterceptor(s.auth_token.get_secret_value(), protect_all=s.auth_all)
            )
        server = grpc.aio.server(
            interceptors=interceptors,
            options=options,
            maximum_concurrent_rpcs=s.max_concurrent_rpcs,
        )
        if self.registry is not None:
            self.jobs = TrainingJobs(
                model_root=self.registry.root,
                data_root=s.data_root,
                device=s.device,
                max_queued=s.max_queued_jobs,
                max_upload_bytes=s.max_upload_bytes,
                activate=self.holder.activate,
                upload_ttl_s=s.upload_ttl_hours * 3600.0,
                metrics=self.metrics,
                max_upload_total_bytes=s.max_upload_total_bytes,
                max_uploads=s.max_uploads,
                max_concurrent_uploads=s.max_concurrent_uploads,
                max_job_topics=s.max_job_topics,
                max_job_epochs=s.max_job_epochs,
                max_job_seconds=s.max_job_hours * 3600.0,
            )
        # One budget of queued keywords for both front doors.
        budget = KeywordBudget(s.max_queued_keywords, self.metrics, s.retry_delay_ms / 1000)
        servicer = TopicProjectionServicer(
            self.holder, self._batcher, s, self.jobs, budget, self.traffic
        )
        pb_grpc.add_TopicProjectionServiceServicer_to_server(servicer, server)
        open_inference = OpenInferenceServicer(
            self.holder, self._batcher, s, self.metrics, ready=lambda: self.serving, budget=budget
        )
        oip_grpc.add_GRPCInferenceServiceServicer_to_server(open_inference, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, OIP_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        await self._set_health(NOT_SERVING)
        await self.health.set(LIVENESS, SERVING)
        try:
            address = f"{s.host}:{s.port}"
            # Ask first: a failed bind inside grpc also prints a native E1203 log line.
            if s.port and not _can_bind(s.host, s.port, self.reuse_port):
                raise RuntimeError(address)
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
                "not one of this machine's; choose another --port (0 picks a free one) or --host"
            )
        self._server = server
        for warning in exposure_warnings(s):
            log.warning(warning)
        if s.metrics_port is not None:
            metrics_host = s.metrics_host or s.host
            try:
                self._metrics_server, _ = start_http_server(
                    s.metrics_port, addr=metrics_host, registry=self.metrics.registry
                )
            except OSError as e:  # name the port: "Address already in use" alone says not which
                raise OSError(
                    f"cannot serve metrics on {metrics_host}:{s.metrics_port} ({e.strerror or e}): "
                    "choose another --metrics-port (0 picks a free one), or --no-metrics"
                ) from None
            self.metrics_port = self._metrics_server.server_address[1]
        if self.jobs is not None:
            self.jobs.start()
        self._batcher.start()
        await server.start()
        # Warm up the model (first-call allocations, CUDA context) before SERVING, outside the
        # batcher so that the warm-up is not counted in the metrics.
        await asyncio.get_running_loop().run_in_executor(None, warm_up, self.model)
        await self._set_health(SERVING)
        log.info("serving %s on %s:%d", self.model.version_, s.host, self.port)

    async def _set_health(self, status: int) -> None:
        self.serving = status == SERVING
        for name in ("", SERVICE_NAME, OIP_SERVICE_NAME):
            await self.health.set(name, status)

    async def shutdown(self, drain: bool = True) -> None:
        """The answer to SIGTERM: drain, then stop (`drain=False`: no drain, for Ctrl-C).

        1. Health says NOT_SERVING at once, so that health-checking load balancers and clients
           move away, while the server keeps serving for `drain_seconds`.
        2. Then new calls get UNAVAILABLE (retryable: a client's retry lands on another
           replica) while those in flight get up to `grace_seconds` to finish.
        3. Then the server stops: grpc sends GOAWAY and closes the connections.
        """
        s = self.settings
        await self._set_health(NOT_SERVING)  # not ready; LIVENESS stays SERVING
        if drain:
            log.info("draining: NOT_SERVING, serving on for %.1f s", s.drain_seconds)
            await asyncio.sleep(s.drain_seconds)
        self._calls.closing = True
        deadline = time.monotonic() + s.grace_seconds
        while self._calls.active and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        log.info("stopping: %d calls still in flight", self._calls.active)
        await self.stop(max(0.0, deadline - time.monotonic()))

    async def stop(self, grace: float | None = None) -> None:
        """Stop accepting, let in-flight RPCs finish within `grace` seconds, then close."""
        grace = self.settings.grace_seconds if grace is None else grace
        self.serving = False
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


def _can_bind(host: str, port: int, reuse_port: bool) -> bool:
    """Whether a listening socket could bind `host:port`, as grpc would (with SO_REUSEPORT when
    the server shares its port between workers)."""
    try:
        infos = socket.getaddrinfo(
            host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError:
        return True  # not ours to judge: grpc reports an address it cannot resolve
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port and hasattr(socket, "SO_REUSEPORT"):
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            try:
                probe.bind(address)
            except OSError:
                continue
            return True
    return False
