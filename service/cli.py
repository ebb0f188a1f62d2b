"""The `topicproj` command line: train, evaluate and inspect models.

Errors that the user can fix (bad input, a damaged model) print one line naming the problem and
exit with status 2; nothing else is caught.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models.activation import ACTIVATIONS, ALL_ACTIVATIONS
from models.catalog import FORMATS, Catalog, read_catalog
from models.errors import TopicprojError

EXIT_USAGE = 2


def _catalog(args: argparse.Namespace) -> tuple[Catalog, Any]:
    """The catalog named by --data, or the synthetic catalog (with its ground truth)."""
    if args.data is None:
        from models.synthetic import make_synthetic_catalog

        synthetic = make_synthetic_catalog(seed=args.data_seed)
        return synthetic.catalog, synthetic
    catalog = read_catalog(args.data, format=args.format, skip_bad_rows=args.skip_bad_rows)
    s = catalog.stats
    if not args.quiet:
        print(
            f"read {s.rows} items from {args.data} ({s.skipped} bad rows skipped, "
            f"{s.empty} with no keyword)",
            file=sys.stderr,
        )
        for line in s.errors[:3]:
            print(f"  skipped: {line}", file=sys.stderr)
    if len(catalog) == 0:
        raise TopicprojError(f"{args.data}: no items to learn from")
    return catalog, None


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="catalog file; without it, the built-in synthetic catalog")
    p.add_argument("--format", choices=FORMATS, help="override the format told by the extension")
    p.add_argument("--skip-bad-rows", action="store_true", help="skip and count malformed rows")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic catalog")
    p.add_argument(
        "--min-df", type=int, default=3, help="keep keywords on at least this many items"
    )
    p.add_argument("--topics", type=int, default=50)
    p.add_argument("--quiet", action="store_true", help="no progress bars or summaries")


def cmd_train(args: argparse.Namespace) -> int:
    from models.topic_model import TopicModel

    out = Path(args.out)
    if out.exists() and not args.overwrite and (not out.is_dir() or any(out.iterdir())):
        # Fail before training, not after minutes of it.
        raise TopicprojError(f"{out} already exists; pass --overwrite to replace it")
    catalog, _ = _catalog(args)
    model = TopicModel(
        args.topics,
        activation=args.activation,
        min_df=args.min_df,
        max_vocabulary=args.max_vocabulary,
        init=args.init,
        max_epochs=args.epochs,
        **{
            k: v
            for k, v in (("learning_rate", args.learning_rate), ("l1", args.l1))
            if v is not None
        },
        device=args.device,
        random_state=args.seed,
        verbose=not args.quiet,
    ).fit(catalog.keywords)
    model.data_summary_ = {
        "source": catalog.source,
        "items": len(catalog),
        "skipped_rows": catalog.stats.skipped,
        "items_without_keywords": catalog.stats.empty,
        "vocabulary": model.vocabulary_.stats,
    }
    path = model.save(args.out, overwrite=args.overwrite)
    if not args.quiet:
        r = model.train_result_
        print(
            f"trained {args.topics} topics ({args.activation}) over {len(model.vocabulary_)} "
            f"keywords in {r.seconds:.1f} s, {r.epochs} epochs, best validation loss "
            f"{r.best_validation_loss:.4f} at epoch {r.best_epoch}; saved to {path}",
            file=sys.stderr,
        )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from models.evaluation import evaluate, write_report

    activations = [a.strip() for a in args.activations.split(",") if a.strip()]
    unknown = [a for a in activations if a not in ALL_ACTIVATIONS]
    if unknown:
        raise TopicprojError(
            f"unknown activation(s) {', '.join(unknown)}; choose from {', '.join(ALL_ACTIVATIONS)}"
        )
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError:
        raise TopicprojError(
            f"--seeds must be integers separated by commas, got {args.seeds!r}"
        ) from None
    catalog, synthetic = _catalog(args)
    report = evaluate(
        catalog,
        n_topics=args.topics,
        activations=activations,
        seeds=seeds,
        split_seed=args.split_seed,
        min_df=args.min_df,
        sklearn_baselines=not args.no_sklearn,
        planted_keywords=synthetic.topic_keywords if synthetic else None,
        item_topics=synthetic.item_topics if synthetic else None,
        progress=not args.quiet,
    )
    command = "topicproj " + " ".join(shlex.quote(a) for a in args.argv)
    out = write_report(report, args.report, command)
    if not args.quiet:
        print((out / "report.md").read_text(encoding="utf-8"))
    return 0


def cmd_study(args: argparse.Namespace) -> int:
    import importlib.util

    from models.study import StudyConfig, run_study, with_overrides
    from models.study_report import write_study

    # The figures are drawn last: without matplotlib, say so now, not after the whole study.
    if importlib.util.find_spec("matplotlib") is None:
        raise TopicprojError(
            "the study draws its figures with matplotlib: pip install 'topicproj[study]'"
        )

    def ints(text: str | None) -> tuple[int, ...] | None:
        if text is None:
            return None
        try:
            return tuple(int(s) for s in text.split(",") if s.strip())
        except ValueError:
            raise TopicprojError(f"expected integers separated by commas, got {text!r}") from None

    base = StudyConfig.smoke() if args.smoke else StudyConfig()
    config = with_overrides(
        base,
        topics=ints(args.topics),
        seeds=ints(args.seeds),
        planted_seeds=ints(args.planted_seeds),
        tradeoff_seeds=ints(args.tradeoff_seeds),
    )
    catalog = None
    if args.data is not None:
        catalog = read_catalog(args.data, format=args.format, skip_bad_rows=args.skip_bad_rows)
    study = run_study(config, catalog, progress=not args.quiet)
    command = "topicproj " + " ".join(shlex.quote(a) for a in args.argv)
    out = write_study(study, args.out, command)
    if not args.quiet:
        print(f"wrote {out}: study.md, study.json and the figures", file=sys.stderr)
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from models.topic_model import TopicModel

    model = TopicModel.load(args.model, device="cpu")
    topics = model.topic_table(args.top)
    if args.json:
        info = {
            "activation": model.activation,
            "topics": model.n_topics,
            "keywords": len(model.vocabulary_),
            "training": model.train_result_.to_dict() if hasattr(model, "train_result_") else None,
            "data": model.data_summary_,
            "topic_table": topics,
        }
        if info["training"]:
            info["training"].pop("history", None)
        json.dump(info, sys.stdout, indent=1, ensure_ascii=False)
        print()
        return 0
    print(
        f"{args.model}: {model.n_topics} topics, activation {model.activation}, "
        f"{len(model.vocabulary_)} keywords"
    )
    print(f"{'topic':>5}  {'slope':>6}  {'tau':>6}  {'beta':>7}  {'bias':>6}  top keywords")
    for t in topics:
        print(
            f"{t['topic']:>5}  {t['slope']:>6.3f}  {t['threshold']:>6.3f}  {t['sharpness']:>7.2f}  "
            f"{t['bias']:>6.3f}  {', '.join(t['top_keywords'])}"
        )
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    from models.projection import expand_inputs, project_catalog
    from models.topic_model import TopicModel

    output = Path(args.output)
    inputs = expand_inputs(args.input)
    if args.engine == "ray":
        from models.ray_projection import project_with_ray

        summary = project_with_ray(
            args.model,
            inputs,
            output,
            format=args.format,
            batch_size=args.batch_size,
            top_k=args.top_k,
            skip_bad_rows=args.skip_bad_rows,
            device=args.device,
            address=args.ray_address,
            actors=args.actors,
            gpus_per_actor=args.gpus_per_actor,
        )
    else:
        model = TopicModel.load(args.model, device=args.device)
        summary = project_catalog(
            model,
            inputs,
            output,
            format=args.format,
            batch_size=args.batch_size,
            top_k=args.top_k,
            skip_bad_rows=args.skip_bad_rows,
            progress=not args.quiet,
        )
    if not args.quiet:
        print(summary.line(), file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from pydantic import ValidationError

    from .settings import Settings
    from .workers import run

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    given = {
        name: getattr(args, name)
        for name in Settings.model_fields
        if getattr(args, name, None) is not None
    }
    if args.no_metrics:
        given["metrics_port"] = None
    try:
        settings = Settings(**given)
    except ValidationError as e:
        raise TopicprojError(
            "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        ) from None
    return run(settings)


def cmd_health(args: argparse.Namespace) -> int:
    import grpc

    from .client import check_health

    try:
        token = args.token or os.environ.get("TOPICPROJ_AUTH_TOKEN") or None
        status = check_health(
            args.address,
            timeout=args.timeout,
            service=args.service,
            ca_file=args.ca_file,
            token=token,
        )
    except grpc.RpcError as e:
        print(f"{args.address}: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    print(f"{args.address}: {status}")
    return 0 if status == "SERVING" else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="topicproj", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="learn topics from a catalog and save a model directory")
    _add_data_args(p)
    p.add_argument("--activation", choices=ALL_ACTIVATIONS, default="overlap")
    p.add_argument("--max-vocabulary", type=int, help="keep at most this many keywords")
    p.add_argument("--init", choices=("nndsvda", "random", "lda"), default="nndsvda")
    p.add_argument(
        "--epochs", type=int, default=200, help="most epochs; early stopping may end sooner"
    )
    p.add_argument("--learning-rate", type=float, help="Adam learning rate (default: the model's)")
    p.add_argument(
        "--l1", type=float, default=None, help="activation sparsity penalty (default: the model's)"
    )
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model directory")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="compare activations and scikit-learn baselines")
    _add_data_args(p)
    p.add_argument("--activations", default=",".join(ACTIVATIONS))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--no-sklearn", action="store_true", help="leave out NMF and LDA")
    p.add_argument("--report", required=True, help="directory for report.json and report.md")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "study", help="the activation study: every table and figure of docs/activation.md"
    )
    p.add_argument("--data", help="real catalog; without it, parts 2-6 run on synthetic data")
    p.add_argument("--format", choices=FORMATS, help="override the format told by the extension")
    p.add_argument("--skip-bad-rows", action="store_true", help="skip and count malformed rows")
    p.add_argument("--topics", help="topic counts on the real catalog (default 50,100)")
    p.add_argument("--seeds", help="seeds on the real catalog (default 0,1,2,3,4)")
    p.add_argument("--planted-seeds", help="seeds on the planted catalogs (default 0,1,2)")
    p.add_argument("--tradeoff-seeds", help="seeds of the L1 sweep (default 0,1)")
    p.add_argument("--smoke", action="store_true", help="a tiny setting that runs in seconds")
    p.add_argument("--out", required=True, help="folder for study.md, study.json and the PNGs")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("project", help="project a whole catalog offline into Parquet or .npy")
    p.add_argument("--model", required=True, help="model directory")
    p.add_argument("--input", required=True, help="catalog file, directory, or glob pattern")
    p.add_argument("--output", required=True, help=".parquet (or .npy for the dense matrix)")
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    p.add_argument("--format", choices=FORMATS, help="override the format told by the extension")
    p.add_argument("--batch-size", type=int, default=8192, help="items per batch")
    p.add_argument("--top-k", type=int, default=0, help="also write each item's top-k topics")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--skip-bad-rows", action="store_true", help="skip and count malformed rows")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--ray-address", help="Ray cluster to use (default: RAY_ADDRESS, or local)")
    p.add_argument("--actors", type=int, default=None, help="Ray actors (default: CPUs or GPUs)")
    p.add_argument("--gpus-per-actor", type=float, default=0.0, help="GPUs per Ray actor")
    p.set_defaults(func=cmd_project)

    p = sub.add_parser("serve", help="serve a model over gRPC, with Prometheus metrics")
    p.add_argument("--model", help="model directory; without it, the demo model")
    p.add_argument(
        "--model-root",
        dest="model_root",
        help="registry of model versions: serve its active one, allow ListModels/ActivateModel",
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="gRPC port (default 50051)")
    p.add_argument("--metrics-port", type=int, dest="metrics_port", help="default 9095")
    p.add_argument("--no-metrics", action="store_true", help="no metrics endpoint")
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument(
        "--workers", type=int, help="server processes on the one port (default 1; see README)"
    )
    p.add_argument("--torch-threads", type=int, dest="torch_threads", help="per worker (default 1)")
    p.add_argument("--max-batch-items", type=int, dest="max_batch_items")
    p.add_argument("--max-wait-ms", type=float, dest="max_wait_ms")
    p.add_argument(
        "--wait-when-idle",
        action="store_true",
        default=None,
        dest="wait_when_idle",
        help="hold even a lone request for --max-wait-ms (default: only while requests arrive "
        "together)",
    )
    p.add_argument("--max-queue-items", type=int, dest="max_queue_items")
    p.add_argument("--max-items-per-request", type=int, dest="max_items_per_request")
    p.add_argument("--max-keyword-length", type=int, dest="max_keyword_length")
    p.add_argument("--dead-topic-window", type=int, dest="dead_topic_window")
    p.add_argument("--grace-seconds", type=float, dest="grace_seconds")
    p.add_argument("--data-root", dest="data_root", help="catalogs StartTraining may read by path")
    p.add_argument("--max-upload-bytes", type=int, dest="max_upload_bytes")
    p.add_argument(
        "--auth-token",
        dest="auth_token",
        help="require this bearer token on the RPCs that change state (prefer the "
        "TOPICPROJ_AUTH_TOKEN variable: a flag shows in the process list)",
    )
    p.add_argument(
        "--auth-all",
        action="store_true",
        default=None,
        dest="auth_all",
        help="require the token on every RPC, projection and health included",
    )
    p.add_argument("--tls-cert", dest="tls_cert", help="PEM certificate chain: serve over TLS")
    p.add_argument("--tls-key", dest="tls_key", help="PEM private key of --tls-cert")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("health", help="exit 0 only when the server reports SERVING")
    p.add_argument("--address", default="127.0.0.1:50051", help="HOST:PORT")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds")
    p.add_argument("--service", default="", help="service name; empty means the whole server")
    p.add_argument("--ca-file", help="connect over TLS, trusting this PEM certificate")
    p.add_argument(
        "--token", help="bearer token, for servers with --auth-all (default TOPICPROJ_AUTH_TOKEN)"
    )
    p.set_defaults(func=cmd_health)

    from .remote_cli import add_parsers

    add_parsers(sub)

    p = sub.add_parser("inspect", help="show a model's topics and activation parameters")
    p.add_argument("model", help="model directory")
    p.add_argument("--top", type=int, default=10, help="keywords per topic")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_inspect)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return int(args.func(args))
    except (TopicprojError, ValueError, OSError) as e:
        print(f"topicproj {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
