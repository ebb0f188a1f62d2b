"""The Grafana dashboard of topicproj, as data: every panel and its PromQL, written once.

`deploy/generate.py` writes it to deploy/grafana/topicproj.json; a test runs every query
against a real Prometheus scraping a real server under load, and fails on a panel that would
show nothing.
"""

from __future__ import annotations

from typing import Any

RATE = "$__rate_interval"  # Grafana's: at least four scrape intervals
SERVED = 'rpc=~"Project|ProjectStream|ModelInfer"'


def quantile(q: float, metric: str, selector: str = "") -> str:
    return f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{selector}[{RATE}])))"


def mean(metric: str) -> str:
    return f"sum(rate({metric}_sum[{RATE}])) / sum(rate({metric}_count[{RATE}]))"


# (title, unit, [(legend, expr)], description)
PANELS: list[tuple[str, str, list[tuple[str, str]], str]] = [
    (
        "Requests by RPC and status",
        "reqps",
        [("{{rpc}} {{code}}", f"sum by (rpc, code) (rate(topicproj_requests_total[{RATE}]))")],
        "Calls handled per second, every RPC and status code.",
    ),
    (
        "Error ratio by RPC",
        "percentunit",
        [
            (
                "{{rpc}}",
                # `or ... * 0`: an RPC with no failure has no failing series at all; without
                # it the panel would show "No data" on a healthy server instead of 0
                f'(sum by (rpc) (rate(topicproj_requests_total{{code!="OK"}}[{RATE}])) '
                f"or sum by (rpc) (rate(topicproj_requests_total[{RATE}])) * 0) "
                f"/ sum by (rpc) (rate(topicproj_requests_total[{RATE}]))",
            )
        ],
        "Share of calls that did not end OK (client mistakes included).",
    ),
    (
        "Projection latency",
        "s",
        [
            (
                f"p{round(q * 100)}",
                quantile(q, "topicproj_request_latency_seconds", f"{{{SERVED}}}"),
            )
            for q in (0.5, 0.95, 0.99)
        ],
        "Project, ProjectStream and ModelInfer, from the call's arrival to its answer.",
    ),
    (
        "Queue wait and batch compute (p95)",
        "s",
        [
            ("queue wait", quantile(0.95, "topicproj_queue_wait_seconds")),
            ("batch compute", quantile(0.95, "topicproj_batch_compute_seconds")),
        ],
        "Waiting for a batch (saturation) against computing it (the device).",
    ),
    (
        "Items per batch",
        "short",
        [("mean", mean("topicproj_batch_items")), ("p95", quantile(0.95, "topicproj_batch_items"))],
        "How well dynamic batching merges requests.",
    ),
    (
        "In flight and queued",
        "short",
        [
            ("calls in flight", "sum(topicproj_inflight_requests)"),
            ("items queued", "sum(topicproj_queue_items)"),
        ],
        "What the autoscaler follows.",
    ),
    (
        "Items projected by RPC",
        "short",
        [("{{rpc}}", f"sum by (rpc) (rate(topicproj_items_total[{RATE}]))")],
        "Items received per second.",
    ),
    (
        "Activation sparsity",
        "short",
        [
            ("zero-topic ratio", mean("topicproj_zero_topic_ratio")),
            ("active topics per item", mean("topicproj_active_topics")),
        ],
        "The overlap gate's effect: the share of exactly-zero topics, and topics per item.",
    ),
    (
        "Dead topics",
        "short",
        [
            ("dead topics", "max(topicproj_dead_topics)"),
            ("topics", "max(topicproj_model_topics)"),
        ],
        "Topics silent over the last --dead-topic-window items, against the model's topics.",
    ),
    (
        "Unknown-keyword ratio (drift)",
        "percentunit",
        [("mean", mean("topicproj_unknown_keyword_ratio"))],
        "The data-drift signal: the share of an item's keywords the model does not know.",
    ),
    (
        "Topic drift against the training baseline",
        "short",
        [("{{instance}}", "topicproj_topic_drift")],
        "Jensen-Shannon divergence (0-1) of the traffic window's topic shares against the "
        "model's training catalog; TopicprojTopicDriftHigh fires above its calibrated "
        "threshold. topicproj traffic shows which topics moved.",
    ),
    (
        "Items no topic explains, and unknown keywords, against the baseline",
        "percentunit",
        [
            ("no topic {{instance}}", "topicproj_unassigned_items_ratio"),
            ("no topic, training", "max(topicproj_baseline_unassigned_items_ratio)"),
            ("unknown keywords {{instance}}", "topicproj_traffic_unknown_keywords_ratio"),
            ("unknown keywords, held-out", "max(topicproj_baseline_unknown_keywords_ratio)"),
        ],
        "The traffic window's share of items with no active topic and of keywords outside the "
        "vocabulary, each beside the model's own figure from training.",
    ),
    (
        "Model version",
        "short",
        [
            (
                "{{version}} ({{activation}}, {{device}})",
                "max by (version, activation, device) (topicproj_model_info)",
            ),
            ("vocabulary", "max(topicproj_model_vocabulary_keywords)"),
        ],
        "The version each replica serves; more than one line during a rollout or a swap.",
    ),
    (
        "Model swaps and refused versions",
        "short",
        [
            ("swaps", "sum(increase(topicproj_model_swaps_total[1h]))"),
            ("refused", "sum(increase(topicproj_model_versions_refused_total[1h]))"),
        ],
        "Versions activated while serving, and damaged ones refused at start, over an hour.",
    ),
    (
        "Training jobs",
        "short",
        [
            ("{{state}}", "sum by (state) (topicproj_training_jobs)"),
            ("epochs/min", f"sum(rate(topicproj_training_epochs_total[{RATE}])) * 60"),
            ("last job (s)", "max(topicproj_training_last_job_duration_seconds)"),
        ],
        "Jobs by state, training progress, and how long the last one took.",
    ),
    (
        "CPU and memory per worker",
        "short",
        [
            ("cpu {{instance}}", f'rate(process_cpu_seconds_total{{job="topicproj"}}[{RATE}])'),
            ("GiB {{instance}}", 'process_resident_memory_bytes{job="topicproj"} / 2^30'),
        ],
        "Cores busy and resident memory of each worker process.",
    ),
]


def dashboard() -> dict[str, Any]:
    panels = []
    for i, (title, unit, targets, description) in enumerate(PANELS):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": title,
                "description": description,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [
                    {
                        "refId": chr(ord("A") + j),
                        "expr": expr,
                        "legendFormat": legend,
                        "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    }
                    for j, (legend, expr) in enumerate(targets)
                ],
            }
        )
    return {
        "title": "topicproj",
        "uid": "topicproj",
        "tags": ["topicproj", "grpc"],
        "timezone": "utc",
        "schemaVersion": 39,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "label": "Prometheus",
                }
            ]
        },
        "panels": panels,
    }
