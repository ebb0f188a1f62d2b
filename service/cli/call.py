"""`topicproj call`: ask a running server from the shell, without grpcurl or Python.

`topicproj call project alien space --top-k 3 --explain 3` projects one item (its keywords as
arguments; `--item "a, b"` once per item for several) and prints each item's top topics, and
with `--explain N` why they fired, as a table; `--json` prints the same as JSON, the
explanations in the contract's schema. `topicproj call model` shows the served model's topics.
Connection flags as every command that talks to a server: `--address`, `--token` (or
`TOPICPROJ_AUTH_TOKEN`), `--ca-file` for TLS, `--timeout`.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from topicproj.models.errors import TopicprojError

from .remote import connect, connection_args, reports_rpc_errors

DEFAULT_TOP_K = 5


def _items(args: argparse.Namespace) -> list[list[str]]:
    items = [list(args.keywords)] if args.keywords else []
    for text in args.item or []:
        items.append([k.strip() for k in text.split(",") if k.strip()])
    if not items:
        raise TopicprojError(
            "give an item's keywords as arguments (topicproj call project alien space) or "
            '--item "alien, space" once per item'
        )
    return items


def _results(args: argparse.Namespace) -> dict[str, Any]:
    """The answer as plain JSON-ready data: one entry per item, in the order asked."""
    items = _items(args)
    with connect(args) as client:
        got = client.project(
            items, top_k=args.top_k, model_version=args.model_version or "", explain=args.explain
        )
    labels = got.top_labels or [[] for _ in items]
    out = []
    for i, keywords in enumerate(items):
        entry: dict[str, Any] = {
            "keywords": keywords,
            "known_keywords": int(got.known_keywords[i]),
            "unknown_keywords": int(got.unknown_keywords[i]),
            "active_topics": int(got.active_topics[i]),
            "top": [
                {"topic": int(t), "score": float(s), "label": label}
                for (t, s), label in zip(got.top[i], labels[i], strict=False)
            ],
        }
        if args.all_topics:
            entry["topics"] = got.topics[i].tolist()
        if got.explanations is not None:
            entry["explanation"] = got.explanations[i]
        out.append(entry)
    return {"model_version": got.model_version, "topic_count": got.topics.shape[1], "items": out}


def _terms(t: dict[str, Any]) -> str:
    """bias + each keyword's term, as the pre-activation adds them up."""
    terms = [f"{k['keyword']} {k['contribution']:.3f}" for k in t["keywords"]]
    return " + ".join([f"{t['bias']:.3f}", *terms])


def _print_table(result: dict[str, Any]) -> None:
    print(f"model {result['model_version']}, {result['topic_count']} topics")
    for i, item in enumerate(result["items"]):
        print()
        print(
            f"item {i + 1}: {', '.join(item['keywords']) or '(no keywords)'}: "
            f"{item['known_keywords']} known, {item['unknown_keywords']} unknown keywords, "
            f"{item['active_topics']} active topics"
        )
        if item["known_keywords"] == 0:
            print("  no keyword is in the model's vocabulary: every topic is zero")
        if item["top"]:
            print(f"  {'topic':>5}  {'score':>7}  label")
            for t in item["top"]:
                print(f"  {t['topic']:>5}  {t['score']:>7.3f}  {t['label']}")
        explanation = item.get("explanation")
        if explanation is None:
            continue
        for t in explanation["active_topics"]:
            print(
                f"  why {t['topic']}: {_terms(t)} = {t['pre_activation']:.3f}; overlap "
                f"{t['overlap']:.3f} > threshold {t['threshold']:.3f}, gate {t['gate']:.2f}"
            )
        for t in explanation["closed_topics"]:
            closed = (
                f"overlap {t['overlap']:.3f} <= threshold {t['threshold']:.3f}"
                if t["gate"] == 0
                else f"pre-activation {t['pre_activation']:.3f} < 0"
            )
            print(f"  closed {t['topic']}: {closed} ({_terms(t)})")


@reports_rpc_errors
def cmd_call(args: argparse.Namespace) -> int:
    if args.action == "model":
        with connect(args) as client:
            model = client.get_model(top_keywords=args.top_keywords)
        if args.json:
            json.dump(model, sys.stdout, indent=1, ensure_ascii=False)
            print()
            return 0
        print(
            f"model {model['version']}: {model['topic_count']} topics, activation "
            f"{model['activation']}, {model['vocabulary_size']} keywords"
        )
        for t in model["topics"]:
            print(f"  {t['index']:>5}  {t.get('label', '')}: {', '.join(t['top_keywords'])}")
        return 0
    if args.top_k < 0:
        raise TopicprojError(f"--top-k must be 0 or more, got {args.top_k}")
    if args.explain is not None and args.explain < 0:
        raise TopicprojError(f"--explain must be 0 or more, got {args.explain}")
    result = _results(args)
    if args.json:
        json.dump(result, sys.stdout, indent=1, ensure_ascii=False)
        print()
    else:
        _print_table(result)
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "call",
        help="ask a running server: project keywords, explain them, show its model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="{project,model}")
    a = actions.add_parser(
        "project",
        help="project items: their top topics, and with --explain why",
        description="Project items on the server and print their top topics (and why).",
    )
    a.add_argument("keywords", nargs="*", metavar="KEYWORD", help="one item's keywords")
    a.add_argument(
        "--item",
        action="append",
        metavar="KEYWORDS",
        help='another item, its keywords separated by commas ("alien, space"); repeatable',
    )
    a.add_argument(
        "--top-k",
        type=int,
        default=DEFAULT_TOP_K,
        metavar="K",
        help=f"topics shown per item, best first (default {DEFAULT_TOP_K})",
    )
    a.add_argument(
        "--explain",
        type=int,
        metavar="N",
        help="also say why each topic fired or stayed closed, with N keywords per topic",
    )
    a.add_argument(
        "--all-topics", action="store_true", help="with --json, every topic's value as well"
    )
    a.add_argument(
        "--model-version",
        metavar="VERSION",
        help="fail unless the server serves this version (default: whatever it serves)",
    )
    a.add_argument("--json", action="store_true", help="print JSON instead of a table")
    connection_args(a)
    a = actions.add_parser("model", help="the served model: version and topics")
    a.add_argument(
        "--top-keywords", type=int, default=5, metavar="N", help="keywords per topic (default 5)"
    )
    a.add_argument("--json", action="store_true", help="print JSON instead of a table")
    connection_args(a)
    p.set_defaults(func=cmd_call)
