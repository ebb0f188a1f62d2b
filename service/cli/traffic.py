"""`topicproj traffic` (a server's live profile) and `topicproj drift` (the same, offline).

Both print one comparison: per topic the share of items it is active on now against the
model's training baseline (or, for `drift --against`, against a second catalog), the drift
score, the share of items no topic explains, the unknown-keyword rate and the unknown keywords
that recur. `--json` prints the whole comparison instead of the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .remote import connect, connection_args, reports_rpc_errors

TABLE_TOPICS = 15  # topics in the table, the ones that moved most first


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


def table(report: dict[str, Any], against: str = "baseline") -> str:
    """The comparison as text: a summary, the topics that moved most, the unknown keywords."""
    lines = [f"items: {int(report.get('items', report.get('window_items', 0)))}"]
    if "window_capacity" in report:
        lines[0] += (
            f" of a {int(report['window_capacity'])}-item window, oldest "
            f"{float(report['window_age_seconds']):.0f} s ago (version {report['version']})"
        )
    drift = _num(report.get("drift"))
    if not report.get("has_baseline"):
        lines.append(f"drift: unavailable (no {against})")
    else:
        lines.append(f"drift: {drift:.4f}" if drift is not None else "drift: - (no items)")
    lines.append(
        f"items with no topic: {_pct(report.get('unassigned_ratio'))} "
        f"({against} {_pct(report.get('baseline_unassigned_ratio'))})"
    )
    lines.append(
        f"unknown keywords: {_pct(report.get('unknown_keyword_ratio'))} "
        f"({against} {_pct(report.get('baseline_unknown_keyword_ratio'))})"
    )
    topics = report.get("topics", [])
    moved = [int(k) for k in report.get("moved_topics", [])]
    order = moved + [t["topic"] for t in topics if int(t["topic"]) not in moved]
    by_index = {int(t["topic"]): t for t in topics}
    lines.append("")
    lines.append(f"{'topic':>5}  {'now':>7}  {against[:8]:>8}  {'change':>7}  label")
    for k in order[:TABLE_TOPICS]:
        t = by_index[int(k)]
        base = _num(t.get("baseline_share"))
        change = "-" if base is None else f"{100 * (float(t['share']) - base):+.1f}"
        lines.append(
            f"{int(k):>5}  {_pct(t['share']):>7}  {_pct(base):>8}  {change:>7}  {t['label']}"
        )
    if len(order) > TABLE_TOPICS:
        lines.append(f"  ... {len(order) - TABLE_TOPICS} more topics (--json lists all)")
    unknown = report.get("unknown_keywords", [])
    if unknown:
        lines.append("")
        lines.append("unknown keywords that recur (approximate count):")
        for u in unknown:
            lines.append(f"  {float(u['count']):8.1f}  {u['keyword']}")
    return "\n".join(lines)


@reports_rpc_errors
def cmd_traffic(args: argparse.Namespace) -> int:
    with connect(args) as client:
        report = client.traffic(args.version, args.top)
    if args.json:
        print(json.dumps(report, indent=1, ensure_ascii=False))
    else:
        report["window_age_seconds"] = float(report.get("window_age", "0s").rstrip("s"))
        print(table(report))
    return 0


def cmd_drift(args: argparse.Namespace) -> int:
    from topicproj.models.core.topic_model import TopicModel
    from topicproj.models.core.traffic import catalog_profile, compare
    from topicproj.models.data.catalog import read_catalog

    from .versions import resolve_model

    model = TopicModel.load(resolve_model(args.model, args.model_root), device=args.device)
    catalog = read_catalog(args.input, format=args.format, skip_bad_rows=args.skip_bad_rows)
    now, unknown = catalog_profile(model, catalog.keywords, top_unknown=args.top)
    against = "baseline"
    if args.against is not None:
        other = read_catalog(args.against, format=args.format, skip_bad_rows=args.skip_bad_rows)
        reference, _ = catalog_profile(model, other.keywords, top_unknown=0)
        report = compare(now, reference, labels=model.labels())
        against = "against"
    else:
        baseline = model.baseline_
        report = compare(
            now,
            baseline.counts if baseline is not None else None,
            labels=model.labels(),
            reference_unknown_ratio=baseline.unknown_ratio if baseline is not None else None,
        )
    report["unknown_keywords"] = [{"keyword": k, "count": c} for k, c, _ in unknown]
    if args.json:
        print(json.dumps(report, indent=1, ensure_ascii=False))
    else:
        print(table(report, against))
    if not report["has_baseline"]:
        print("topicproj drift: the model has no baseline; compare with --against", file=sys.stderr)
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("traffic", help="a server's recent traffic against its model's baseline")
    p.add_argument("--version", default="", help="model version (default: the served one)")
    p.add_argument("--top", type=int, default=20, help="unknown keywords to list (default 20)")
    p.add_argument("--json", action="store_true", help="the whole profile as JSON")
    connection_args(p)
    p.set_defaults(func=cmd_traffic)

    p = sub.add_parser("drift", help="a catalog against a model's baseline, before serving it")
    p.add_argument("--model", required=True, help="model directory, or a VERSION with --model-root")
    p.add_argument("--model-root", help="registry where --model VERSION is looked up")
    p.add_argument("--input", required=True, help="the catalog to check")
    p.add_argument("--against", help="compare with this catalog instead of the model's baseline")
    p.add_argument("--format", help="override the format told by the extension")
    p.add_argument("--skip-bad-rows", action="store_true", help="skip and count malformed rows")
    p.add_argument("--top", type=int, default=20, help="unknown keywords to list (default 20)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--json", action="store_true", help="the whole comparison as JSON")
    p.set_defaults(func=cmd_drift)
