"""Real servers on localhost ports, run on their own event loop in a background thread."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client import CollectorRegistry

from tests.conftest import SYNTHETIC
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.synthetic import make_synthetic_catalog
from topicproj.models.store.registry import ModelRegistry
from topicproj.service.metrics import ServiceMetrics
from topicproj.service.serving.loading import open_registry
from topicproj.service.serving.server import ProjectionServer
from topicproj.service.settings import Settings


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The google.rpc.BadRequest field violations an error carries, decoded as a client would."""
    status = rpc_status.from_call(error)
    out = []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out += [(v.field, v.description) for v in bad.field_violations]
    return out


class RunningServer:
    """A `ProjectionServer` on a free port, with its own metrics registry."""

    def __init__(
        self,
        model: TopicModel,
        wait: bool = True,
        tracer_provider: object = None,
        **settings: object,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.registry = CollectorRegistry()
        config = Settings(**({"port": 0, "metrics_port": 0, "grace_seconds": 2.0} | settings))
        registry, refused = None, []
        if config.model_root is not None:  # the model comes from the registry, as in serve()
            model, registry, refused = open_registry(config)
        self.server = ProjectionServer(
            model,
            config,
            ServiceMetrics(self.registry),
            registry=registry,
            tracer_provider=tracer_provider,
        )
        self.server.metrics.models_refused.inc(len(refused))
        self.started = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop)
        self.stopped = False
        if wait:
            self.started.result(30)
            self.address = f"127.0.0.1:{self.server.port}"

    def run(self, coro, timeout: float = 30.0):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float:
        return self.registry.get_sample_value(name, labels or {}) or 0.0

    def metric_reaches(self, name: str, labels: dict[str, str], value: float) -> bool:
        """Poll: RPC metrics are recorded just after the status leaves, so they can lag a bit."""
        deadline = time.monotonic() + 3.0
        while self.metric(name, labels) < value and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.metric(name, labels) == value

    def stop(self, grace: float | None = None) -> None:
        if not self.stopped:
            self.stopped = True
            self.run(self.server.stop(grace))
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


@pytest.fixture
def serve(model: TopicModel) -> Iterator:  # type: ignore[type-arg]
    """A factory: serve(**settings) -> RunningServer, stopped after the test."""
    servers: list[RunningServer] = []

    def start(**settings: object) -> RunningServer:
        servers.append(RunningServer(model, **settings))
        return servers[-1]

    yield start
    for s in servers:
        s.stop(0)


@pytest.fixture
def server(serve) -> RunningServer:  # type: ignore[no-untyped-def]
    return serve()


@pytest.fixture
def roots(tmp_path: Path, model_dir: Path) -> tuple[Path, Path]:
    """A registry root holding the served model, and a data root with two catalogs."""
    model_root, data_root = tmp_path / "models", tmp_path / "data"
    registry = ModelRegistry(model_root)
    registry.activate(registry.add(model_dir))
    data_root.mkdir()
    catalog = make_synthetic_catalog(**SYNTHETIC, seed=3).catalog
    with open(data_root / "catalog.jsonl", "w", encoding="utf-8") as f:
        for i, kws in enumerate(catalog.keywords):
            f.write(json.dumps({"id": f"m{i}", "keywords": kws}) + "\n")
    (data_root / "broken.jsonl").write_text('{"id": "a", "keywords": ["x"]}\nnot json\n')
    return model_root, data_root


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, and its key (PEM files)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path
