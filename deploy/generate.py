"""Writes the operators' files from one definition: the alert rules, their promtool unit tests,
and the Grafana dashboard.

    python deploy/generate.py          # rewrites deploy/prometheus/*.yaml, deploy/grafana/*.json

Each alert is written once, here, with a case that fires it and one that does not; the
expected annotations of the unit tests are the alert's own, so the tests cannot drift from the
rules. YAML is written as JSON-style scalars (valid YAML), which needs no YAML library. A test
checks that the committed files are what this script writes.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
JOB = "topicproj"
SERVED = 'rpc=~"Project|ProjectStream|ModelInfer"'
# The traffic alerts (see benchmarks/RESULTS.md, "Topic traffic"): the drift score above
# which a window is further from the training baseline than the release-year calibration's
# no-drift splits ever were, the unknown-keyword excess over the baseline's held-out rate, and
# the items a window needs before either is trusted.
DRIFT_THRESHOLD = 0.002
UNKNOWN_EXCESS = 0.1
MIN_WINDOW_ITEMS = 5000


@dataclass(frozen=True)
class Case:
    """Input series (promtool notation) and, when the alert fires, the labels it fires with."""

    series: dict[str, str]
    fires: list[dict[str, str]] = field(default_factory=list)
    eval_time: str = "15m"


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    runbook: str
    fire: Case
    quiet: Case


ALERTS = [
    Alert(
        "TopicprojTargetDown",
        f'up{{job="{JOB}"}} == 0',
        "2m",
        "page",
        "topicproj target {{ $labels.instance }} is down",
        "Prometheus cannot scrape this worker's metrics port. Check the pod: kubectl get pods "
        "-l app.kubernetes.io/name=topicproj; kubectl describe pod for its events (OOMKilled, a "
        "failing probe, a crash loop); kubectl logs --previous for the last error. A worker that "
        "exits takes its server down (--workers exits 1), so the pod restarts; if it keeps "
        "crashing, roll back to the previous image or model version.",
        Case(
            {
                f'up{{job="{JOB}",instance="a:9095"}}': "0x10",
                f'up{{job="{JOB}",instance="b:9095"}}': "1x10",
            },
            [{"job": JOB, "instance": "a:9095"}],
            "5m",
        ),
        Case({f'up{{job="{JOB}",instance="a:9095"}}': "1 0 1x8"}, eval_time="5m"),
    ),
    Alert(
        "TopicprojHighLatencyP99",
        "histogram_quantile(0.99, sum by (le) (rate("
        f"topicproj_request_latency_seconds_bucket{{{SERVED}}}[5m]))) > 0.5",
        "10m",
        "warn",
        "topicproj p99 projection latency is over 500 ms",
        "Projection p99 over 500 ms for 10 minutes. Compare queue wait with batch compute on the "
        "dashboard: a long queue wait means the replicas are saturated (scale out; check that "
        "the autoscaler is not at its maximum); a long compute means a heavier model or a slower "
        "device (was a version just activated?). Requests of many thousand items raise p99 too: "
        "the batch-size panel shows them.",
        Case(
            {
                'topicproj_request_latency_seconds_bucket{rpc="Project",code="OK",le="0.5"}': (
                    "0+1x30"
                ),
                'topicproj_request_latency_seconds_bucket{rpc="Project",code="OK",le="1"}': (
                    "0+100x30"
                ),
                'topicproj_request_latency_seconds_bucket{rpc="Project",code="OK",le="+Inf"}': (
                    "0+100x30"
                ),
            },
            [{}],
            "20m",
        ),
        Case(
            {
                'topicproj_request_latency_seconds_bucket{rpc="Project",code="OK",le="0.5"}': (
                    "0+100x30"
                ),
                'topicproj_request_latency_seconds_bucket{rpc="Project",code="OK",le="+Inf"}': (
                    "0+100x30"
                ),
            },
            eval_time="20m",
        ),
    ),
    Alert(
        "TopicprojErrorRatio",
        "sum(rate(topicproj_requests_total{code!~"
        '"OK|INVALID_ARGUMENT|NOT_FOUND|UNAUTHENTICATED|PERMISSION_DENIED"}[5m])) '
        "/ sum(rate(topicproj_requests_total[5m])) > 0.01",
        "5m",
        "page",
        "over 1% of topicproj calls fail on the server's side",
        "Over 1% of calls end INTERNAL, UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED or "
        "FAILED_PRECONDITION (client mistakes such as INVALID_ARGUMENT are left out). Break it "
        "down by code on the dashboard. INTERNAL: the server log has the stack trace. "
        "RESOURCE_EXHAUSTED: see TopicprojQueueSaturated. DEADLINE_EXCEEDED: clients' deadlines "
        "are shorter than the queue wait. FAILED_PRECONDITION: a damaged model version.",
        Case(
            {
                'topicproj_requests_total{rpc="Project",code="OK"}': "0+100x20",
                'topicproj_requests_total{rpc="Project",code="INTERNAL"}': "0+5x20",
            },
            [{}],
        ),
        Case(
            {
                'topicproj_requests_total{rpc="Project",code="OK"}': "0+100x20",
                'topicproj_requests_total{rpc="Project",code="INVALID_ARGUMENT"}': "0+50x20",
            }
        ),
    ),
    Alert(
        "TopicprojQueueSaturated",
        'sum(rate(topicproj_requests_total{code="RESOURCE_EXHAUSTED"}[5m])) > 0 '
        "or max(topicproj_queue_items) > 32768",
        "5m",
        "warn",
        "topicproj is refusing work: its queue is full",
        "Requests are refused with RESOURCE_EXHAUSTED (clients retry after the RetryInfo delay), "
        "or a queue holds over half of the default limit of 65,536 items. Scale out (kubectl "
        "scale, or raise the autoscaler's maxReplicaCount), look for one client sending very "
        "large requests (items by RPC on the dashboard), and check the device: a GPU replica "
        "that fell back to the CPU computes far slower.",
        Case(
            {
                'topicproj_requests_total{rpc="Project",code="OK"}': "0+100x20",
                'topicproj_requests_total{rpc="Project",code="RESOURCE_EXHAUSTED"}': "0+3x20",
                "topicproj_queue_items": "100x20",
            },
            [{}],
        ),
        Case(
            {
                'topicproj_requests_total{rpc="Project",code="OK"}': "0+100x20",
                "topicproj_queue_items": "1000x20",
            }
        ),
    ),
    Alert(
        "TopicprojDeadTopicsRising",
        "max(topicproj_dead_topics) / max(topicproj_model_topics) > 0.2 "
        "and max(delta(topicproj_dead_topics[1h])) > 0",
        "30m",
        "warn",
        "over a fifth of the served topics have gone silent, and more each hour",
        "Over a fifth of the served model's topics fired on none of the last "
        "--dead-topic-window items, and the count is rising. The traffic has moved away from "
        "what the model learned (new kinds of items), or a client sends items that share "
        "little with the vocabulary. Check the unknown-keyword panel; retrain on recent catalog "
        "data and activate the new version.",
        Case({"topicproj_dead_topics": "0+1x90", "topicproj_model_topics": "50x90"}, [{}], "80m"),
        Case(
            {"topicproj_dead_topics": "30x90", "topicproj_model_topics": "50x90"}, eval_time="80m"
        ),
    ),
    Alert(
        "TopicprojUnknownKeywordDrift",
        "sum(rate(topicproj_unknown_keyword_ratio_sum[30m])) "
        "/ sum(rate(topicproj_unknown_keyword_ratio_count[30m])) > 0.5",
        "30m",
        "warn",
        "items average over half of their keywords unknown to the model",
        "The data-drift signal: on average over half of an item's keywords are not in the "
        "model's vocabulary, so projections rest on few keywords. Either the catalog's "
        "vocabulary changed (new keywords, another language, another spelling) or a client "
        "sends the wrong field. Sample recent requests with the client's team; retrain on "
        "current data (topicproj jobs start) and activate it.",
        Case(
            {
                "topicproj_unknown_keyword_ratio_sum": "0+70x90",
                "topicproj_unknown_keyword_ratio_count": "0+100x90",
            },
            [{}],
            "80m",
        ),
        Case(
            {
                "topicproj_unknown_keyword_ratio_sum": "0+10x90",
                "topicproj_unknown_keyword_ratio_count": "0+100x90",
            },
            eval_time="80m",
        ),
    ),
    Alert(
        "TopicprojTopicDriftHigh",
        f"topicproj_topic_drift > {DRIFT_THRESHOLD} "
        f"and topicproj_traffic_window_items >= {MIN_WINDOW_ITEMS}",
        "30m",
        "warn",
        "traffic on {{ $labels.instance }} has drifted from the model's training catalog",
        "The topic distribution of the last window of items (topicproj traffic --address "
        "HOST:PORT shows it) is further from the training baseline than random halves of a "
        f"catalog ever are (Jensen-Shannon divergence over {DRIFT_THRESHOLD}; calibrated on a "
        "release-year split, see benchmarks/RESULTS.md). Look at the topics that moved most and "
        "the unknown keywords that recur. A few topics grew or shrank: the model still explains "
        "the traffic; relabel if their meaning shifted, nothing else. Many items with no topic, "
        "or unknown keywords forming themes: train a child on recent data (topicproj jobs start "
        "--parent VERSION, with --add-topics K for K new themes), check it with topicproj "
        "drift --model NEW --input RECENT, and activate it.",
        Case(
            {
                'topicproj_topic_drift{instance="a:9095"}': "0.001x10 0.01x50",
                'topicproj_traffic_window_items{instance="a:9095"}': "10000x60",
            },
            [{"instance": "a:9095"}],
            "55m",
        ),
        Case(
            {
                'topicproj_topic_drift{instance="a:9095"}': "0.001x60",
                'topicproj_traffic_window_items{instance="a:9095"}': "10000x60",
                'topicproj_topic_drift{instance="b:9095"}': "0.05x60",
                'topicproj_traffic_window_items{instance="b:9095"}': "200x60",
            },
            eval_time="55m",
        ),
    ),
    Alert(
        "TopicprojUnknownKeywordsRising",
        f"topicproj_traffic_unknown_keywords_ratio - topicproj_baseline_unknown_keywords_ratio "
        f"> {UNKNOWN_EXCESS} and topicproj_traffic_window_items >= {MIN_WINDOW_ITEMS}",
        "30m",
        "warn",
        "traffic on {{ $labels.instance }} brings more unknown keywords than training predicted",
        f"Over {round(UNKNOWN_EXCESS * 100)} points more of the window's keywords are unknown "
        "than of held-out training items (the model's baseline): the vocabulary is aging. "
        "topicproj traffic lists the unknown keywords that recur: if they are new themes, "
        "train a child with --add-topics K (K about the number of themes) so that they get "
        "topics; if they are spellings or another field, fix the client instead.",
        Case(
            {
                'topicproj_traffic_unknown_keywords_ratio{instance="a:9095"}': "0.3x10 0.6x50",
                'topicproj_baseline_unknown_keywords_ratio{instance="a:9095"}': "0.3x60",
                'topicproj_traffic_window_items{instance="a:9095"}': "10000x60",
            },
            [{"instance": "a:9095"}],
            "55m",
        ),
        Case(
            {
                'topicproj_traffic_unknown_keywords_ratio{instance="a:9095"}': "0.35x60",
                'topicproj_baseline_unknown_keywords_ratio{instance="a:9095"}': "0.3x60",
                'topicproj_traffic_window_items{instance="a:9095"}': "10000x60",
            },
            eval_time="55m",
        ),
    ),
    Alert(
        "TopicprojModelVersionRefused",
        "increase(topicproj_model_versions_refused_total[15m]) > 0",
        "0m",
        "page",
        "topicproj refused a damaged model version at start",
        "At start the active version failed its checksums or could not be read; the server fell "
        "back to the newest version that loads, so it serves an older model than the registry's "
        "active pointer names. The server log names the version and the file. Add the model "
        "again from its source (topicproj serve --model-root DIR --model SRC), or activate a "
        "good version (topicproj models activate VERSION).",
        Case({"topicproj_model_versions_refused_total": "0 0 1x10"}, [{}], "5m"),
        Case({"topicproj_model_versions_refused_total": "0x10"}, eval_time="5m"),
    ),
    Alert(
        "TopicprojTrainingJobFailed",
        "increase(topicproj_training_job_failures_total[1h]) > 0",
        "0m",
        "warn",
        "a topicproj training job failed",
        "A training job ended FAILED; the model served is unchanged. topicproj jobs list shows "
        "the job and its error (the catalog row that could not be read, a bad option, or the "
        "server stopping while it ran). Fix the catalog or the options and start it again.",
        Case({"topicproj_training_job_failures_total": "0 0 1x10"}, [{}], "5m"),
        Case({"topicproj_training_job_failures_total": "0x10"}, eval_time="5m"),
    ),
]


def _yaml(value: object, indent: int = 0) -> str:
    """`value` as block YAML, every scalar in JSON form (which YAML reads as it is)."""
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return "{}"
        lines = []
        for k, v in value.items():
            if isinstance(v, dict | list) and v:
                lines.append(f"{pad}{k}:\n{_yaml(v, indent + 2)}")
            else:
                lines.append(f"{pad}{k}: {_yaml(v)}")
        return "\n".join(lines)
    if isinstance(value, list):
        if not value:
            return "[]"
        lines = []
        for v in value:
            body = _yaml(v, indent + 2)
            lines.append(
                f"{pad}- {body.lstrip()}" if isinstance(v, dict | list) else f"{pad}- {body}"
            )
        return "\n".join(lines)
    return json.dumps(value, ensure_ascii=False)


HEADER = "# Written by deploy/generate.py from its one definition of each alert; do not edit.\n"


def rules() -> dict[str, object]:
    return {
        "groups": [
            {
                "name": "topicproj",
                "rules": [
                    {
                        "alert": a.name,
                        "expr": a.expr,
                        "for": a.for_,
                        "labels": {"severity": a.severity},
                        "annotations": {"summary": a.summary, "runbook": a.runbook},
                    }
                    for a in ALERTS
                ],
            }
        ]
    }


def _render(template: str, labels: dict[str, str]) -> str:
    for k, v in labels.items():
        template = template.replace(f"{{{{ $labels.{k} }}}}", v)
    return template


def rule_tests() -> dict[str, object]:
    tests = []
    for a in ALERTS:
        for case in (a.fire, a.quiet):
            expected = [
                {
                    "exp_labels": {"severity": a.severity, **labels},
                    "exp_annotations": {
                        "summary": _render(a.summary, labels),
                        "runbook": a.runbook,
                    },
                }
                for labels in case.fires
            ]
            tests.append(
                {
                    "name": f"{a.name} {'fires' if case.fires else 'stays quiet'}",
                    "interval": "1m",
                    "input_series": [{"series": s, "values": v} for s, v in case.series.items()],
                    "alert_rule_test": [
                        {"eval_time": case.eval_time, "alertname": a.name, "exp_alerts": expected}
                    ],
                }
            )
    return {"rule_files": ["alerts.yaml"], "evaluation_interval": "1m", "tests": tests}


def main(argv: list[str] | None = None) -> int:
    """Writes into deploy/ (or the folder given as the one argument, for the test)."""
    sys.path.insert(0, str(HERE))
    from grafana_dashboard import dashboard  # beside this file

    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else HERE
    prometheus = out / "prometheus"
    prometheus.mkdir(parents=True, exist_ok=True)
    (prometheus / "alerts.yaml").write_text(HEADER + _yaml(rules()) + "\n", encoding="utf-8")
    (prometheus / "alerts_test.yaml").write_text(
        HEADER + _yaml(rule_tests()) + "\n", encoding="utf-8"
    )
    grafana = out / "grafana"
    grafana.mkdir(parents=True, exist_ok=True)
    (grafana / "topicproj.json").write_text(
        json.dumps(dashboard(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {prometheus}/alerts.yaml, alerts_test.yaml, {grafana}/topicproj.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
