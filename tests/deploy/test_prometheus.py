"""The alert rules and the dashboard: current, valid, tested by promtool, and every query
answered by a real Prometheus scraping a real server under load."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from topicproj.models.core.traffic import TrafficCounts, compare
from topicproj.service.metrics import ServiceMetrics

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
sys.path.insert(0, str(DEPLOY))
from generate import ALERTS, rule_tests, rules  # noqa: E402
from grafana_dashboard import PANELS, dashboard  # noqa: E402

needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool not installed (make test installs it)"
)
needs_prometheus = pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="prometheus not installed (make test installs it)"
)


def test_the_files_in_deploy_are_what_generate_writes(tmp_path):
    result = subprocess.run(
        [sys.executable, str(DEPLOY / "generate.py"), str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    for path in ("prometheus/alerts.yaml", "prometheus/alerts_test.yaml", "grafana/topicproj.json"):
        fresh = (tmp_path / path).read_text()
        assert (DEPLOY / path).read_text() == fresh, f"deploy/{path} is stale: make deploy-files"
    assert json.loads((DEPLOY / "grafana/topicproj.json").read_text()) == dashboard()


SERIES = {  # the series names Prometheus stores for each kind of family
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
    "info": ("_info",),
}


def exported_names() -> set[str]:
    """Every series name the server exports, from each family's name and kind, so that a
    labelled family with no sample yet counts too."""
    metrics = ServiceMetrics(CollectorRegistry(), version="test")
    # The traffic gauges come from a server's profile; an empty one exports every family.
    empty = compare(TrafficCounts.zeros(2), None) | {"window_items": 0, "window_age_seconds": 0}
    metrics.watch_traffic(lambda: empty, per_topic=True)
    names = set()
    for family in metrics.registry.collect():
        names |= {family.name + suffix for suffix in SERIES.get(family.type, ("",))}
    return names


def referenced(expr: str) -> set[str]:
    words = set(re.findall(r"\b(topicproj_[a-z_]+|process_[a-z_]+)\b", expr))
    return words


def test_every_metric_the_rules_and_panels_query_is_exported():
    names = exported_names()
    exprs = [a.expr for a in ALERTS] + [e for _, _, ts, _ in PANELS for _, e in ts]
    missing = {m for e in exprs for m in referenced(e)} - names
    assert not missing, f"queried but never exported: {missing}"


@needs_promtool
def test_promtool_checks_and_tests_the_rules(tmp_path):
    check = subprocess.run(
        ["promtool", "check", "rules", "alerts.yaml"],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(
        ["promtool", "test", "rules", "alerts_test.yaml"],
        cwd=DEPLOY / "prometheus",
        capture_output=True,
        text=True,
    )
    assert test.returncode == 0, test.stdout + test.stderr
    # every alert has a case that fires it and one that does not
    cases = rule_tests()["tests"]
    for alert in ALERTS:
        mine = [c for c in cases if c["alert_rule_test"][0]["alertname"] == alert.name]
        assert sorted(bool(c["alert_rule_test"][0]["exp_alerts"]) for c in mine) == [False, True]
    assert len(rules()["groups"][0]["rules"]) == len(ALERTS)


@needs_promtool
def test_promtool_would_catch_a_broken_rule(tmp_path):
    """The unit tests can fail: a rule whose threshold moved no longer fires where expected."""
    text = (DEPLOY / "prometheus/alerts.yaml").read_text().replace("> 0.01", "> 0.5")
    (tmp_path / "alerts.yaml").write_text(text)
    shutil.copy(DEPLOY / "prometheus/alerts_test.yaml", tmp_path)
    test = subprocess.run(
        ["promtool", "test", "rules", "alerts_test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert test.returncode != 0 and "TopicprojErrorRatio" in test.stdout + test.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def query(base: str, expr: str) -> list:  # type: ignore[type-arg]
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


@needs_prometheus
def test_every_dashboard_panel_returns_data(serve, roots, catalog_items, tmp_path):
    """A healthy server under load (projections, a training job, and no failing call) scraped
    every second by a real Prometheus: each panel's every query must return at least one
    series, so that a ratio of failures shows 0 rather than nothing."""
    from topicproj.service.client import TopicClient

    model_root, data_root = roots
    server = serve(model_root=model_root, data_root=data_root, metrics_port=free_port())
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: topicproj\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{server.server.metrics_port}']}}]\n"
    )
    prometheus = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with TopicClient(server.address) as client:
            job = client.start_training(
                catalog_path="catalog.jsonl", topics=4, min_df=2, max_epochs=3, from_scratch=True
            )
            deadline = time.monotonic() + 25
            while time.monotonic() < deadline:
                client.project(catalog_items[:20], top_k=2)
                client.project([["never seen"]])
                # No failing call at all: every ratio panel must still show 0, not "No data".
                done = client.training_job(job["id"])["done"]
                if done and time.monotonic() > deadline - 15:
                    break
                time.sleep(0.05)
        empty = []
        for title, _, targets, _ in PANELS:
            for legend, expr in targets:
                if not query(base, expr.replace("$__rate_interval", "15s")):
                    empty.append(f"{title} / {legend}: {expr}")
        assert not empty, "panels that would show nothing:\n" + "\n".join(empty)
    finally:
        prometheus.terminate()
        prometheus.wait(10)
