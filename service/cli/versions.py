"""`topicproj models ...`: the versions of a model, their lineage and their topics' labels.

`list`, `activate` and `label` talk to a running server (`label --model DIR` edits a model
directory here instead); `diff` compares two model directories, or two versions of a registry
with `--model-root`, topic by topic.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from topicproj.models.errors import TopicprojError

from .remote import connect, connection_args, reports_rpc_errors

if TYPE_CHECKING:
    from topicproj.models.core.topic_model import TopicModel


def resolve_model(ref: str, model_root: str | None) -> Path:
    """A model directory named by `ref`: a directory, or a version under `model_root`."""
    if Path(ref).is_dir():
        return Path(ref)
    if model_root is not None:
        from topicproj.models.store.registry import ModelRegistry

        return ModelRegistry(model_root).path(ref)  # UnknownVersion names the root
    raise TopicprojError(
        f"{ref}: no such model directory (to name a registry version, add --model-root)"
    )


def lineage_line(model: TopicModel) -> str:
    ln = model.lineage_
    if ln is None:
        return "trained from scratch (no parent)"
    return (
        f"child of {ln.parent or 'an unsaved model'}: {ln.kept} of {len(ln.similarity)} topics "
        f"kept their meaning (similarity >= {ln.threshold}), {ln.keywords_added} keywords "
        f"added, {ln.keywords_dropped} dropped"
    )


@reports_rpc_errors
def cmd_list(args: argparse.Namespace) -> int:
    with connect(args) as client:
        for m in client.list_models():
            when = datetime.datetime.fromisoformat(m["create_time"])
            flags = [f for f in ("active", "serving") if m[f]]
            lineage = m.get("lineage")
            if lineage:
                parent = lineage["parent_version"] or "unsaved"
                kept = f"{lineage['kept_topic_count']}/{len(lineage['topic_similarity'])}"
                flags.append(f"parent {parent} ({kept} topics kept)")
            print(f"{m['version']}  {when:%Y-%m-%d %H:%M} UTC  {' '.join(flags)}".rstrip())
    return 0


@reports_rpc_errors
def cmd_activate(args: argparse.Namespace) -> int:
    with connect(args) as client:
        info = client.activate_model(args.version)
    print(f"serving {info['version']} ({info['topic_count']} topics, {info['activation']})")
    return 0


def _label_changes(args: argparse.Namespace) -> dict[int, str]:
    changes: dict[int, str] = {}
    if args.file is not None:
        try:
            raw = json.loads(Path(args.file).read_text(encoding="utf-8"))
            if not isinstance(raw, dict):
                raise ValueError("expected an object of topic -> label")
            changes |= {int(k): v for k, v in raw.items()}
        except (OSError, ValueError) as e:
            raise TopicprojError(f"{args.file}: {e}") from None
    for topic, label in args.set or ():
        try:
            changes[int(topic)] = label
        except ValueError:
            raise TopicprojError(f"--set {topic!r}: the topic is a number") from None
    for topic in args.clear or ():
        changes[topic] = ""
    if not changes:
        raise TopicprojError("nothing to change: give --set TOPIC LABEL, --clear TOPIC or --file")
    return changes


@reports_rpc_errors
def cmd_label(args: argparse.Namespace) -> int:
    changes = _label_changes(args)
    if args.model is not None:
        from topicproj.models.core.labels import write_labels
        from topicproj.models.core.topic_model import TopicModel

        model = TopicModel.load(resolve_model(args.model, args.model_root), device="cpu")
        merged = model.set_labels(changes)  # ValueError names the bad topic or label
        write_labels(model.path_, merged)
        labels = model.labels()
    else:
        with connect(args) as client:
            labels = client.set_topic_labels(changes, args.version or "")
    for topic, label in enumerate(labels):
        print(f"{topic:>5}  {label}")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """Per topic of B: its similarity to A's topic of the same number and both top keywords."""
    from topicproj.models.core.lineage import similarity_matrix
    from topicproj.models.core.topic_model import TopicModel

    a = TopicModel.load(resolve_model(args.a, args.model_root), device="cpu")
    b = TopicModel.load(resolve_model(args.b, args.model_root), device="cpu")
    S = similarity_matrix(
        b.components_, b.vocabulary_.keywords, a.components_, a.vocabulary_.keywords
    )
    threshold = b.lineage_.threshold if b.lineage_ is not None else 0.5
    rows: list[dict[str, Any]] = []
    top_a, top_b = a.top_keywords(args.top), b.top_keywords(args.top)
    labels_a, labels_b = a.labels(), b.labels()
    for k in range(b.n_topics):
        same = float(S[k, k]) if k < a.n_topics else None
        best = int(S[k].argmax())
        rows.append(
            {
                "topic": k,
                "similarity": same,
                "kept": same is not None and same >= threshold,
                "best_match_in_a": best,
                "best_similarity": float(S[k, best]),
                "label_a": labels_a[k] if k < a.n_topics else None,
                "label_b": labels_b[k],
                "top_keywords_a": top_a[k] if k < a.n_topics else [],
                "top_keywords_b": top_b[k],
            }
        )
    if args.json:
        summary = {"a": a.version_, "b": b.version_, "threshold": threshold, "topics": rows}
        json.dump(summary, sys.stdout, indent=1, ensure_ascii=False)
        print()
        return 0
    print(f"A {a.version_}: {lineage_line(a)}")
    print(f"B {b.version_}: {lineage_line(b)}")
    kept = sum(r["kept"] for r in rows)
    print(f"{kept} of {b.n_topics} topics of B keep A's meaning (similarity >= {threshold})")
    for r in rows:
        sim = "   -" if r["similarity"] is None else f"{r['similarity']:.2f}"
        mark = "" if r["kept"] else f"  NEW (closest in A: {r['best_match_in_a']}"
        mark += f", {r['best_similarity']:.2f})" if mark else ""
        print(f"{r['topic']:>5}  {sim}  {r['label_b']}{mark}")
        print(f"{'':>11}A: {', '.join(r['top_keywords_a'])}")
        print(f"{'':>11}B: {', '.join(r['top_keywords_b'])}")
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "models", help="model versions: list, activate, label, diff (the first three on a server)"
    )
    actions = p.add_subparsers(dest="action", required=True)
    a = actions.add_parser("list", help="every version on the server, oldest first")
    connection_args(a)
    a.set_defaults(func=cmd_list)

    a = actions.add_parser("activate", help="serve this version from now on")
    a.add_argument("version", help="the version to serve (topicproj models list names them)")
    connection_args(a)
    a.set_defaults(func=cmd_activate)

    a = actions.add_parser(
        "label", help="set or clear topic labels, on a server or in a model directory"
    )
    a.add_argument("--set", nargs=2, action="append", metavar=("TOPIC", "LABEL"), help="repeatable")
    a.add_argument("--clear", type=int, action="append", metavar="TOPIC", help="repeatable")
    a.add_argument("--file", help='JSON object {"topic": "label"}; "" clears')
    a.add_argument("--version", help="on a server: the version to label (default: the served one)")
    a.add_argument("--model", metavar="VERSION|DIR", help="label this model here, not on a server")
    a.add_argument("--model-root", help="registry where --model VERSION is looked up")
    connection_args(a)
    a.set_defaults(func=cmd_label)

    a = actions.add_parser("diff", help="compare two models topic by topic (B against A)")
    a.add_argument("a", metavar="A", help="model directory, or a version with --model-root")
    a.add_argument("b", metavar="B", help="model directory, or a version with --model-root")
    a.add_argument("--model-root", help="registry where versions are looked up")
    a.add_argument("--top", type=int, default=6, help="keywords per topic (default 6)")
    a.add_argument("--json", action="store_true", help="print JSON instead of a table")
    a.set_defaults(func=cmd_diff)
