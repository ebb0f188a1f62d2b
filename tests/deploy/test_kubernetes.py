"""The Kubernetes manifests render, and agree with the server they run: its flags parse into
valid settings, and ports, probes, drain times and metric names match what it does."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from topicproj.service.cli.main import build_parser
from topicproj.service.metrics import ServiceMetrics
from topicproj.service.serving.server import LIVENESS
from topicproj.service.settings import Settings

REPO = Path(__file__).resolve().parents[2]
OVERLAYS = ("cpu", "gpu")
pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")


def render(overlay: str) -> dict[str, dict]:  # type: ignore[type-arg]
    out = subprocess.run(
        ["kubectl", "kustomize", str(REPO / "deploy/kubernetes/overlays" / overlay)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return {doc["kind"]: doc for doc in yaml.safe_load_all(out)}


def settings_of(container: dict) -> Settings:  # type: ignore[type-arg]
    """The settings the container's arguments give the server, through its own parser."""
    args = build_parser().parse_args(container["args"])
    assert args.command == "serve"
    return Settings(_cli_settings_source=args.settings_source(parsed_args=args))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_manifests_agree_with_the_server(overlay):
    docs = render(overlay)
    assert {"Deployment", "Service", "PodMonitor", "ScaledObject", "PodDisruptionBudget"} <= set(
        docs
    )
    pod = docs["Deployment"]["spec"]["template"]
    [container] = pod["spec"]["containers"]
    s = settings_of(container)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["grpc"] == s.port and s.host == "0.0.0.0"
    # every worker's metrics port is declared, and scraped
    assert s.metrics_port is not None
    metrics_ports = {f"metrics-{i}": s.metrics_port + i for i in range(s.workers)}
    assert {k: v for k, v in ports.items() if k.startswith("metrics")} == metrics_ports
    scraped = {e["port"] for e in docs["PodMonitor"]["spec"]["podMetricsEndpoints"]}
    assert scraped == set(metrics_ports)
    # probes: readiness on the server's overall health, liveness on the service that stays
    # SERVING through the drain
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["grpc"] == {"port": s.port, "service": LIVENESS}
    assert container["readinessProbe"]["grpc"] == {"port": s.port}
    # Kubernetes waits for the whole drain and grace before it kills the pod
    assert pod["spec"]["terminationGracePeriodSeconds"] >= s.drain_seconds + s.grace_seconds
    assert s.max_connection_age_seconds is not None  # connections rebalance across replicas
    # locked down: non-root, read-only root, the writable paths mounted
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"]
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/tmp"] and mounts["/models"]["readOnly"]
    assert str(s.model).startswith("/models/")
    assert container["resources"]["requests"]["cpu"] and container["resources"]["limits"]
    # the Service, the PodMonitor and the budget select the Deployment's pods
    labels = pod["metadata"]["labels"]
    for kind, path in [
        ("Service", ["spec", "selector"]),
        ("PodMonitor", ["spec", "selector", "matchLabels"]),
        ("PodDisruptionBudget", ["spec", "selector", "matchLabels"]),
    ]:
        selector = docs[kind]
        for key in path:
            selector = selector[key]
        assert selector.items() <= labels.items(), kind
    assert docs["Service"]["spec"]["ports"][0]["targetPort"] == "grpc"
    # the autoscaler's query names metrics the server exports
    query = docs["ScaledObject"]["spec"]["triggers"][0]["metadata"]["query"]
    exported = {f.name for f in ServiceMetrics(CollectorRegistry()).registry.collect()}
    for name in ("topicproj_queue_items", "topicproj_inflight_requests"):
        assert name in query and name in exported
    assert (
        docs["ScaledObject"]["spec"]["scaleTargetRef"]["name"]
        == docs["Deployment"]["metadata"]["name"]
    )


def test_the_gpu_overlay_asks_for_a_gpu_and_serves_on_it():
    [container] = render("gpu")["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert settings_of(container).device == "cuda"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    [cpu] = render("cpu")["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert settings_of(cpu).device == "auto" and "nvidia.com/gpu" not in cpu["resources"]["limits"]
