"""Commands that run here, on files: train, inspect, project (the lab's, evaluate and study, are
in research.py).

Every catalog is read with `--input` and everything written goes to `--output`; a model is
named with `--model`.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from topicproj.models.core.options import (
    CANDIDATE_FORMS,
    DEFAULTS,
    DEMO,
)
from topicproj.models.data.formats import FORMATS
from topicproj.models.errors import TopicprojError

from .lab import lab_module
from .options import add_option_args, count, given_options

if TYPE_CHECKING:
    from topicproj.models.data.catalog import Catalog


def _catalog(args: argparse.Namespace) -> tuple[Catalog, Any]:
    """The catalog named by --input, or the synthetic catalog (with its ground truth)."""
    from topicproj.models.data.catalog import read_catalog

    if args.input is None:
        from topicproj.models.data.synthetic import make_synthetic_catalog

        synthetic = make_synthetic_catalog(seed=args.synthetic_seed)
        return synthetic.catalog, synthetic
    columns = _columns(args)
    catalog = read_catalog(
        args.input, format=args.format, skip_bad_rows=args.skip_bad_rows, columns=columns
    )
    _check_separator(args, catalog)
    s = catalog.stats
    if not args.quiet:
        print(
            f"read {s.rows} items from {args.input} ({s.skipped} bad rows skipped, "
            f"{s.empty} with no keyword)",
            file=sys.stderr,
        )
        for line in s.errors[:3]:
            print(f"  skipped: {line}", file=sys.stderr)
    if len(catalog) == 0:
        raise TopicprojError(f"{args.input}: no items to learn from")
    return catalog, None


def _columns(args: argparse.Namespace) -> Any:
    """The `Columns` the flags name."""
    from topicproj.models.data.columns import Columns

    keep = tuple(c.strip() for c in (getattr(args, "keep_columns", None) or "").split(",") if c)
    try:
        return Columns(
            keywords=args.keywords_column,
            id=args.id_column,
            separator=args.separator or "|",
            keep=keep,
        )
    except ValueError as e:
        raise TopicprojError(str(e)) from None


def _check_separator(args: argparse.Namespace, catalog: Catalog) -> None:
    """Refuse to learn from whole list cells read as single keywords ("alien, space")."""
    from topicproj.models.data.columns import separator_hint

    if args.separator is not None:
        return  # the user said how cells split
    sample = [k for keywords in catalog.keywords[:2000] for k in keywords]
    hint = separator_hint(sample, "|")
    if hint is not None:
        raise TopicprojError(
            f"{args.input}: most keywords hold {hint!r} (for example {sample[0]!r}): the cells "
            f"look like lists separated by {hint!r}; pass --separator '{hint}' (or "
            "--separator '|' to keep them whole)"
        )


def _add_column_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--keywords-column",
        default="keywords",
        metavar="NAME",
        help="column (or JSON field) holding each item's keywords (default: keywords)",
    )
    p.add_argument(
        "--id-column",
        default="id",
        metavar="NAME",
        help="column holding each item's id (default: id; without one, items are numbered from 1)",
    )
    p.add_argument(
        "--separator",
        metavar="TEXT",
        help="what separates keywords in a cell that is a plain string, not a JSON list "
        "(default: |)",
    )


def _add_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input",
        help="catalog file (a path or a URI: s3://, gs://, hdfs://); without it, the built-in "
        "synthetic catalog",
    )
    p.add_argument("--format", choices=FORMATS, help="override the format told by the extension")
    p.add_argument("--skip-bad-rows", action="store_true", help="skip and count malformed rows")
    p.add_argument(
        "--synthetic-seed", type=int, default=0, help="seed of the synthetic catalog (default 0)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or summaries")
    _add_column_args(p)


def _command_line(args: argparse.Namespace) -> str:
    return "topicproj " + " ".join(shlex.quote(a) for a in args.argv)


def _epoch_lines(
    args: argparse.Namespace, max_epochs: int
) -> Callable[[dict[str, float]], None] | None:
    """A line per epoch on stderr where no progress bar shows (a log file, nohup, a container):
    the bar needs a terminal."""
    if args.quiet or sys.stderr.isatty():
        return None

    def line(epoch: dict[str, float]) -> None:
        print(
            f"epoch {epoch['epoch']}/{max_epochs}: loss {epoch['train_loss']:.4f}, validation "
            f"{epoch['validation_loss']:.4f}, {epoch['dead_topics']} dead topics",
            file=sys.stderr,
            flush=True,
        )

    return line


def cmd_train(args: argparse.Namespace) -> int:
    from topicproj.models.core.topic_model import TopicModel

    out = Path(args.output)
    if out.exists() and not args.overwrite and (not out.is_dir() or any(out.iterdir())):
        # Fail before training, not after minutes of it.
        raise TopicprojError(f"{out} already exists; pass --overwrite to replace it")
    given = given_options(args, args.option_names)
    if args.demo:
        if given or args.input is not None or args.parent is not None:
            raise TopicprojError("--demo is a whole recipe: give it no catalog or options")
        from topicproj.models.training.demo import train_demo_model

        path = train_demo_model(out, device=args.device, verbose=not args.quiet)
        if not args.quiet:
            print(f"trained the demo model; saved to {path}", file=sys.stderr)
        return 0
    parent = None
    if args.parent is not None:
        from .versions import resolve_model

        parent = TopicModel.load(resolve_model(args.parent, args.model_root), device=args.device)
    if args.add_topics and parent is None:
        raise TopicprojError("--add-topics grows a parent's topics: give --parent")
    # A child continues its parent: the options not given are the parent's, and its topics
    # are the parent's plus any added.
    options = (parent.options if parent is not None else DEFAULTS).replace(**given)
    if parent is not None and args.add_topics and "n_topics" not in given:
        options = options.replace(n_topics=parent.n_topics + args.add_topics)
    if options.activation in CANDIDATE_FORMS:  # a research form: the lab builds it
        lab_module()
    catalog, _ = _catalog(args)
    model = TopicModel.from_options(options, device=args.device, verbose=not args.quiet)
    model.fit(
        catalog.keywords,
        parent=parent,
        add_topics=args.add_topics,
        on_epoch=_epoch_lines(args, options.max_epochs),
    )
    model.data_summary_ = {
        "source": catalog.source,
        "items": len(catalog),
        "skipped_rows": catalog.stats.skipped,
        "items_without_keywords": catalog.stats.empty,
        "vocabulary": model.vocabulary_.stats,
    }
    path = model.save(out, overwrite=args.overwrite)
    if not args.quiet:
        r = model.train_result_
        print(
            f"trained {options.n_topics} topics ({options.activation}) over "
            f"{len(model.vocabulary_)} keywords in {r.seconds:.1f} s, {r.epochs} epochs, best "
            f"validation loss {r.best_validation_loss:.4f} at epoch {r.best_epoch}; saved to "
            f"{path}",
            file=sys.stderr,
        )
        for line in r.sparsity_lines(options.n_topics)[:1]:
            print(line, file=sys.stderr)
        if model.lineage_ is not None:
            ln = model.lineage_
            print(
                f"from parent {ln.parent or args.parent}: {ln.kept} of {len(ln.similarity)} "
                f"topics kept their meaning (similarity >= {ln.threshold}), "
                f"{ln.added_topics} added; "
                f"{ln.keywords_added} keywords added, {ln.keywords_dropped} dropped",
                file=sys.stderr,
            )
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from topicproj.models.core.topic_model import TopicModel

    model = TopicModel.load(args.model, device="cpu")
    topics = model.topic_table(args.top)
    if args.json:
        info = {
            "activation": model.activation,
            "topics": model.n_topics,
            "keywords": len(model.vocabulary_),
            "training": model.train_result_.to_dict() if hasattr(model, "train_result_") else None,
            "data": model.data_summary_,
            "lineage": model.lineage_.to_dict() if model.lineage_ else None,
            "topic_table": topics,
        }
        if info["training"]:
            info["training"].pop("history", None)
            info["active_topics"] = model.train_result_.active_topics(model.n_topics)
        json.dump(info, sys.stdout, indent=1, ensure_ascii=False)
        print()
        return 0
    print(
        f"{args.model}: {model.n_topics} topics, activation {model.activation}, "
        f"{len(model.vocabulary_)} keywords"
    )
    from .versions import lineage_line

    print(lineage_line(model))
    similarity = model.lineage_.similarity if model.lineage_ else None
    print(f"{'topic':>5}  {'slope':>6}  {'tau':>6}  {'beta':>7}  {'bias':>6}  label / top keywords")
    for t in topics:
        k = t["topic"]
        origin = ""
        if similarity is not None:
            new = similarity[k] < model.lineage_.threshold
            origin = f"  ({'new, ' if new else ''}similarity {similarity[k]:.2f} to parent)"
        mark = " *" if k in model.label_overrides_ else ""
        print(
            f"{k:>5}  {t['slope']:>6.3f}  {t['threshold']:>6.3f}  {t['sharpness']:>7.2f}  "
            f"{t['bias']:>6.3f}  {t['label']}{mark}{origin}"
        )
        print(f"{'':>40}{', '.join(t['top_keywords'])}")
    if hasattr(model, "train_result_"):  # how sparse, and how to read a projection
        print("\n".join(model.train_result_.sparsity_lines(model.n_topics)))
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    from topicproj.models.errors import UnknownKeywordsError

    try:
        summary = _project(args)
    except UnknownKeywordsError as e:
        fix = (
            f"pass --separator '{e.separator}'"
            if e.separator is not None
            else "check --keywords-column and --separator, and that the model fits this catalog"
        )
        raise TopicprojError(f"{e}; {fix}, or --allow-unknown to project anyway") from None
    if not args.quiet:
        print(summary.line(), file=sys.stderr)
        for reason in summary.counts.bad_rows:
            print(f"  skipped: {reason}", file=sys.stderr)
    return 0


def _project(args: argparse.Namespace) -> Any:
    from topicproj.models.offline.projection import expand_inputs, project_catalog
    from topicproj.models.offline.unknown import MAX_UNKNOWN_SHARE

    inputs = expand_inputs(args.input)
    columns = _columns(args)
    max_unknown = None if args.allow_unknown else MAX_UNKNOWN_SHARE
    if args.engine == "ray":
        if args.explain is not None:
            raise TopicprojError("--explain needs the local engine")
        if args.resume:
            raise TopicprojError("--resume needs the local engine")
        from topicproj.models.offline.ray_engine import project_with_ray

        summary = project_with_ray(
            args.model,
            inputs,
            args.output,
            format=args.format,
            batch_size=args.batch_size,
            top_k=args.top_k,
            skip_bad_rows=args.skip_bad_rows,
            device=args.device,
            address=args.ray_address,
            actors=args.actors,
            gpus_per_actor=args.gpus_per_actor,
            columns=columns,
            max_unknown=max_unknown,
        )
    else:
        from topicproj.models.core.topic_model import TopicModel

        model = TopicModel.load(args.model, device=args.device)
        summary = project_catalog(
            model,
            inputs,
            args.output,
            format=args.format,
            batch_size=args.batch_size,
            top_k=args.top_k,
            skip_bad_rows=args.skip_bad_rows,
            progress=not args.quiet,
            explain=args.explain,
            resume=args.resume,
            columns=columns,
            max_unknown=max_unknown,
        )
    return summary


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("train", help="learn topics from a catalog and save a model directory")
    _add_input_args(p)
    p.set_defaults(option_names=add_option_args(p))
    p.add_argument(
        "--demo",
        action="store_true",
        help=f"the demo model's recipe: the synthetic movie catalog, {DEMO.n_topics} topics",
    )
    p.add_argument(
        "--parent",
        metavar="VERSION|DIR",
        help="train a child of this model: its topics start from the parent's and keep their "
        "numbers; options not given are the parent's",
    )
    p.add_argument(
        "--add-topics",
        type=int,
        default=0,
        metavar="K",
        help="with --parent: K new topics after the parent's, started from what the parent "
        "explains worst (watch `topicproj traffic` for when)",
    )
    p.add_argument("--model-root", help="registry where --parent VERSION is looked up")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda (default: auto)")
    p.add_argument("--output", required=True, help="model directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model directory")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("project", help="project a whole catalog offline into Parquet or .npy")
    p.add_argument("--model", required=True, help="model directory")
    p.add_argument(
        "--input",
        required=True,
        help="catalog file, directory, or glob pattern; a path or a URI (s3://, gs://, hdfs://)",
    )
    p.add_argument(
        "--output",
        required=True,
        help=".parquet (or .npy for the dense matrix); a URI is a directory with a _SUCCESS marker",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the parts an interrupted run finished and project only the other input files "
        "(the output is then a directory of parts)",
    )
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this process (default); ray: a Ray cluster (pip install 'topicproj[ray]')",
    )
    p.add_argument("--format", choices=FORMATS, help="override the format told by the extension")
    p.add_argument(
        "--batch-size", type=count(1), default=8192, help="items per batch (default 8192)"
    )
    p.add_argument(
        "--top-k",
        type=count(0),
        default=0,
        metavar="K",
        help="also write each item's top K topics (default 0: none)",
    )
    p.add_argument(
        "--explain",
        type=count(0),
        metavar="N",
        help="also write why each item got its topics (JSON, N keywords per topic)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--skip-bad-rows", action="store_true", help="skip and count malformed rows")
    _add_column_args(p)
    p.add_argument(
        "--keep-columns",
        metavar="NAMES",
        help="input columns to pass through to the output, as text, separated by commas "
        "(title,year)",
    )
    p.add_argument(
        "--allow-unknown",
        action="store_true",
        help="project even when more than half of the keywords are unknown to the model "
        "(without it, such a run fails and writes nothing)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--ray-address", help="Ray cluster to use (default: RAY_ADDRESS, or local)")
    p.add_argument(
        "--actors", type=count(1), default=None, help="Ray actors (default: CPUs or GPUs)"
    )
    p.add_argument("--gpus-per-actor", type=float, default=0.0, help="GPUs per Ray actor")
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("inspect", help="show a model's topics and activation parameters")
    p.add_argument("--model", required=True, help="model directory")
    p.add_argument(
        "--top", type=count(1), default=10, metavar="N", help="keywords per topic (default 10)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_inspect)
