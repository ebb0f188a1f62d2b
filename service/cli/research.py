"""The lab's commands: evaluate and study. They run the lab (lab/ of a checkout, loaded by
lab.py), which is not installed with the package; the catalog flags are the local commands'.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from topicproj.models.core.options import ACTIVATIONS, ALL_ACTIVATIONS, DEFAULTS
from topicproj.models.data.formats import FORMATS
from topicproj.models.errors import TopicprojError

from .lab import lab_module
from .local import (
    _add_column_args,
    _add_input_args,
    _catalog,
    _check_separator,
    _columns,
    _command_line,
)
from .options import add_option_args, count, given_options

EVALUATE_OPTIONS = ("n_topics", "min_df", "max_df", "stop_keywords")  # those that shape the split


def cmd_evaluate(args: argparse.Namespace) -> int:
    lab_evaluation = lab_module("lab.evaluation")
    evaluate, write_report = lab_evaluation.evaluate, lab_evaluation.write_report

    activations = [a.strip() for a in args.activations.split(",") if a.strip()]
    unknown = [a for a in activations if a not in ALL_ACTIVATIONS]
    if unknown:
        raise TopicprojError(
            f"unknown activation(s) {', '.join(unknown)}; choose from {', '.join(ALL_ACTIVATIONS)}"
        )
    seeds = _ints(args.seeds, "--seeds")
    options = DEFAULTS.replace(**given_options(args, EVALUATE_OPTIONS))
    catalog, synthetic = _catalog(args)
    report = evaluate(
        catalog,
        n_topics=options.n_topics,
        activations=activations,
        seeds=list(seeds),
        split_seed=args.split_seed,
        min_df=options.min_df,
        max_df=options.max_df,
        stop_keywords=options.stop_keywords,
        sklearn_baselines=not args.no_sklearn,
        planted_keywords=synthetic.topic_keywords if synthetic else None,
        item_topics=synthetic.item_topics if synthetic else None,
        progress=not args.quiet,
    )
    out = write_report(report, args.output, _command_line(args))
    if not args.quiet:
        print((out / "report.md").read_text(encoding="utf-8"))
    return 0


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise TopicprojError(
            f"{what}: expected integers separated by commas, got {text!r}"
        ) from None


def cmd_study(args: argparse.Namespace) -> int:
    import importlib.util

    write_study = lab_module("lab.study.report").write_study
    study_run = lab_module("lab.study.run")
    StudyConfig, run_study = study_run.StudyConfig, study_run.run_study
    with_overrides = study_run.with_overrides

    # The figures are drawn last: without matplotlib, say so now, not after the whole study.
    if importlib.util.find_spec("matplotlib") is None:
        raise TopicprojError(
            "the study draws its figures with matplotlib: pip install 'topicproj[study]'"
        )
    if args.equal_sparsity:
        return _equal_sparsity(args)
    base = StudyConfig.smoke() if args.smoke else StudyConfig()
    overrides = {
        name: _ints(getattr(args, name), "--" + name.replace("_", "-"))
        for name in ("topics", "seeds", "planted_seeds", "tradeoff_seeds")
        if getattr(args, name) is not None
    }
    config = with_overrides(base, **overrides)
    catalog = None
    if args.input is not None:
        from topicproj.models.data.catalog import read_catalog

        catalog = read_catalog(
            args.input,
            format=args.format,
            skip_bad_rows=args.skip_bad_rows,
            columns=_columns(args),
        )
        _check_separator(args, catalog)
    study = run_study(config, catalog, progress=not args.quiet)
    out = write_study(study, args.output, _command_line(args))
    if not args.quiet:
        print(f"wrote {out}: study.md, study.json and the figures", file=sys.stderr)
    return 0


def _equal_sparsity(args: argparse.Namespace) -> int:
    """The equal-sparsity comparison (docs/activation.md): one run per topic count, each in its own
    folder under --output, by `lab.equal_sparsity`."""
    equal_sparsity = lab_module("lab.equal_sparsity")

    catalog = args.equal_sparsity
    if catalog == "tmdb" and args.input is None:
        raise TopicprojError("--equal-sparsity tmdb needs --input (the TMDB catalog file)")
    default_topics = {
        "tmdb": "50,100",
        "planted": "12",
        "medium": "50",
        "large": "100",
        "short": "100",
    }
    topics = _ints(args.topics or default_topics[catalog], "--topics")
    seeds = ",".join(str(s) for s in _ints(args.seeds or "0,1,2,3,4", "--seeds"))
    for n in topics:
        argv = ["--catalog", catalog, "--topics", str(n), "--seeds", seeds]
        argv += ["--output", str(Path(args.output) / f"{catalog}{n}")]
        argv += ["--jobs", str(args.jobs), "--max-epochs", str(args.max_epochs)]
        if args.input is not None:
            argv += ["--input", args.input]
        for flag in ("gates", "l1", "targets", "baselines"):
            if getattr(args, flag) is not None:
                argv += [f"--{flag}", *(str(v) for v in getattr(args, flag))]
        if args.chosen:
            argv.append("--chosen")
        if equal_sparsity.main(argv) != 0:
            return 1
    return 0


def add_parsers(sub: Any) -> None:
    p = sub.add_parser("evaluate", help="compare activations and scikit-learn baselines")
    _add_input_args(p)
    add_option_args(p, EVALUATE_OPTIONS)
    p.add_argument(
        "--activations",
        default=",".join(ACTIVATIONS),
        metavar="NAME,...",
        help=f"activations to compare, separated by commas (default: {','.join(ACTIVATIONS)}; "
        f"any of {', '.join(ALL_ACTIVATIONS)})",
    )
    p.add_argument(
        "--seeds",
        default="0,1,2",
        metavar="N,...",
        help="training seeds per activation (default 0,1,2)",
    )
    p.add_argument(
        "--split-seed", type=int, default=0, help="seed of the held-out split of items (default 0)"
    )
    p.add_argument("--no-sklearn", action="store_true", help="leave out NMF and LDA")
    p.add_argument("--output", required=True, help="directory for report.json and report.md")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "study", help="the activation study: every table and figure of docs/activation.md"
    )
    p.add_argument("--input", help="real catalog; without it, parts 2-6 run on synthetic data")
    p.add_argument("--format", choices=FORMATS, help="override the format told by the extension")
    p.add_argument("--skip-bad-rows", action="store_true", help="skip and count malformed rows")
    _add_column_args(p)
    p.add_argument("--topics", help="topic counts on the real catalog (default 50,100)")
    p.add_argument("--seeds", help="seeds on the real catalog (default 0,1,2,3,4)")
    p.add_argument("--planted-seeds", help="seeds on the planted catalogs (default 0,1,2)")
    p.add_argument("--tradeoff-seeds", help="seeds of the L1 sweep (default 0,1)")
    p.add_argument("--smoke", action="store_true", help="a tiny setting that runs in seconds")
    es = p.add_argument_group(
        "equal sparsity",
        "gate forms against ReLU-family models pruned to the gate's share of zeros",
    )
    es.add_argument(
        "--equal-sparsity",
        choices=("tmdb", "planted", "medium", "large", "short"),
        help="run this comparison on this catalog instead of the study",
    )
    es.add_argument("--gates", nargs="+", choices=ALL_ACTIVATIONS, help="gate forms to train")
    es.add_argument("--l1", nargs="+", type=float, help="L1 weights of the L1-driven gates")
    es.add_argument("--targets", nargs="+", type=float, help="zero shares of targeted gates")
    es.add_argument(
        "--chosen",
        action="store_true",
        help="also train overlap_auto, the gate that chooses its share of zeros",
    )
    es.add_argument("--baselines", nargs="*", help="ReLU-family baselines (default relu prelu)")
    es.add_argument("--jobs", type=int, default=1, help="runs trained at once (processes)")
    es.add_argument(
        "--max-epochs",
        type=count(1),
        default=DEFAULTS.max_epochs,
        help=f"most epochs per run (default {DEFAULTS.max_epochs})",
    )
    p.add_argument("--output", required=True, help="folder for study.md, study.json and PNGs")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_study)
