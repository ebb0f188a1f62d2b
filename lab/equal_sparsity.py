"""The gate forms against ReLU-family models pruned to the gate's share of zeros.

Each gate form is trained at several L1 weights (one sparsity level each); every baseline is
trained once per seed and then pruned, for each gate run of the same seed, to exactly that gate
run's share of zeros on the training items (`pruning.prune`: activations at or below a
quantile of the baseline's own training activations are set to zero; no test item plays a part).
The comparison is then at equal sparsity: recall@10 of a hidden keyword, and on planted catalogs
active-topic F1. Each model is also scored as trained (recall@10, genre mAP, zeros, F1).

    python -m lab.equal_sparsity --catalog tmdb \\
        --input ../shared/data/tmdb_5000_movies.csv.zip --topics 50 --seeds 0,1,2 \\
        --output reports/issue16/tmdb50

Catalogs: `tmdb` (a file, `--input`), `planted` (the themed synthetic catalog of the study's
base setting), `large` (`synthetic_large`'s default: 30,000 items, 100 topics) and `medium`
(12,000 items, 50 topics). `--jobs N` trains N runs at once in separate processes (each with
`--threads` torch threads); `--device cuda` trains on the GPU and scores on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lab import scoring
from lab.evaluation import EvaluationData, projector_candidate, score
from lab.pruning import prune
from topicproj.models.core.options import DEFAULT_L1, DEFAULTS

GATES = ("overlap", "overlap_coverage", "overlap_capped", "overlap_hard", "overlap_quantile")
BASELINES = ("relu", "prelu")
L1_VALUES = (0.003, 0.01, 0.03)
TARGETED = ("overlap_target", "overlap_coverage_target", "overlap_joint_target")
TARGET_VALUES = (0.5, 0.7, 0.85)


def build_data(catalog: str, input_path: str | None, min_df: int | None) -> EvaluationData:
    """The split every model of a run shares."""
    planted = item_topics = None
    if catalog == "tmdb":
        from topicproj.models.data.catalog import read_catalog

        if not input_path:
            raise SystemExit("--catalog tmdb needs --input")
        cat = read_catalog(input_path)
        min_df = min_df or 3
    elif catalog == "planted":
        from topicproj.models.data.synthetic import make_synthetic_catalog

        synthetic = make_synthetic_catalog(seed=0)  # the study's base setting (noise rate 1/3)
        cat, planted = synthetic.catalog, synthetic.topic_keywords
        item_topics = synthetic.item_topics
        min_df = min_df or 2
    elif catalog in ("large", "medium"):
        from topicproj.models.data.synthetic_large import MEDIUM, make_large_synthetic_catalog

        synthetic = make_large_synthetic_catalog(MEDIUM if catalog == "medium" else None)
        cat, planted = synthetic.catalog, synthetic.topic_keywords
        item_topics = synthetic.item_topics
        min_df = min_df or 3
    elif catalog == "short":
        from topicproj.models.data.synthetic_short import make_short_synthetic_catalog

        synthetic = make_short_synthetic_catalog()
        cat, planted = synthetic.catalog, synthetic.topic_keywords
        item_topics = synthetic.item_topics
        min_df = min_df or 3
    else:
        raise SystemExit(f"unknown catalog {catalog!r}")
    return EvaluationData.build(
        cat, min_df=min_df, split_seed=0, planted_keywords=planted, item_topics=item_topics
    )


_DATA: EvaluationData | None = None  # one per worker process, built once


def _init_worker(catalog: str, input_path: str | None, min_df: int | None, threads: int) -> None:
    global _DATA
    torch.set_num_threads(threads)
    _DATA = build_data(catalog, input_path, min_df)


def _fit(task: dict[str, Any]) -> dict[str, Any]:
    """Train one (activation, L1, seed); its scores as trained and its projections."""
    assert _DATA is not None
    data = _DATA
    t = time.perf_counter()
    targeted = {"target_zeros": task["target"]} if task.get("target") is not None else {}
    candidate = projector_candidate(
        task["activation"],
        task["topics"],
        1,
        device=task["device"],
        l1=task["l1"],
        max_epochs=task["max_epochs"],
        **targeted,
    )
    fitted = candidate.fit(data, task["seed"])
    metrics = score(fitted, data, task["seed"], throughput=False)
    if not task["genre_map"]:
        metrics.pop("genre_map", None)
    Y_train = np.asarray(fitted.project(data.X_train), dtype=np.float32)
    out = task | {
        "metrics": metrics,
        "zeros_train": float((Y_train <= 0).mean()),
        "epochs": fitted.model.n_epochs_,
        "best_epoch": fitted.model.train_result_.best_epoch,
        "steps_per_epoch": _steps_per_epoch(data),
        "zeros_by_epoch": [h["zero_fraction"] for h in fitted.model.train_result_.history],
        "sparsity": fitted.model.train_result_.sparsity,  # the levels tried, where one was chosen
        "train_seconds": fitted.train_seconds,
        "seconds": time.perf_counter() - t,
    }
    if task["activation"] in task["baselines"]:
        # What pruning needs: projections and the decoder, all on the CPU.
        out["Y_train"] = Y_train
        out["Y_test"] = np.asarray(fitted.project(data.X_test), dtype=np.float32)
        out["Y_visible"] = np.asarray(fitted.project(data.visible), dtype=np.float32)
        out["components"] = fitted.components
        model = fitted.model
        out["decoder"] = model.decoder_.cpu()
        out["remap"] = np.array([model.vocabulary_.id(k) for k in data.vocabulary.keywords])
    return out


def _steps_per_epoch(data: EvaluationData) -> int:
    """Optimiser steps in one epoch, as the training loop counts them: items with a keyword,
    less the validation share, in batches."""
    n = int((np.diff(data.X_train.indptr) > 0).sum())
    n_val = min(max(1, round(n * DEFAULTS.validation_fraction)), n - 1)
    return -(-(n - n_val) // DEFAULTS.batch_size)


@torch.no_grad()
def pruned_scores(run: dict[str, Any], data: EvaluationData, level: float) -> dict[str, float]:
    """A baseline run pruned so that `level` of its training activations are zero."""
    Y_test = prune(run["Y_test"], run["Y_train"], level)
    Y_vis = prune(run["Y_visible"], run["Y_train"], level)
    scores = run["decoder"](torch.from_numpy(Y_vis.astype(np.float32))).numpy()[:, run["remap"]]
    recall, _ = scoring.ranking_metrics(scores, data.visible, data.hidden)
    out = {"recall_at_10": recall, "zero_fraction": float((Y_test == 0).mean())}
    if data.planted is not None and data.test_topics is not None:
        f1 = scoring.planted_topic_scores(Y_test, run["components"], data.planted, data.test_topics)
        out["topic_f1"] = f1["topic_f1"]
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    data = build_data(args.catalog, args.input, args.min_df)
    seeds = [int(s) for s in args.seeds.split(",")]
    common = {
        "topics": args.topics,
        "device": args.device,
        "max_epochs": args.max_epochs,
        # planted catalogs name their topics as genres: a probe would score 1.0 and say nothing
        "genre_map": args.catalog == "tmdb" and not args.no_genre_map,
        "baselines": tuple(args.baselines),
    }
    tasks = [
        common | {"activation": a, "l1": DEFAULT_L1, "seed": s}
        for a in args.baselines
        for s in seeds
    ]
    # The gate with neither an L1 weight nor a target: it chooses its share of zeros.
    tasks += [common | {"activation": "overlap_auto", "l1": None, "seed": s} for s in seeds][
        : len(seeds) if args.chosen else 0
    ]
    tasks += [
        common | {"activation": g, "l1": l1, "seed": s}
        for g in args.gates
        if g not in TARGETED
        for l1 in args.l1
        for s in seeds
    ]
    # A targeted gate is held to a share of zeros by a multiplier, with no L1 term.
    tasks += [
        common | {"activation": g, "l1": 0.0, "target": z, "seed": s}
        for g in args.gates
        if g in TARGETED
        for z in args.targets
        for s in seeds
    ]
    init = (args.catalog, args.input, args.min_df, args.threads)
    runs = []

    def log(r: dict[str, Any]) -> None:
        m = r["metrics"]
        print(
            f"[{time.perf_counter() - start:6.0f} s] {r['activation']} {_setting(r)} seed "
            f"{r['seed']}: recall@10 {m['recall_at_10']:.3f} zeros {r['zeros_train']:.2f}"
            + (f" F1 {m['topic_f1']:.3f}" if "topic_f1" in m else "")
            + f" ({r['epochs']} epochs, {r['seconds']:.0f} s)",
            file=sys.stderr,
            flush=True,
        )

    if args.jobs <= 1:
        _init_worker(*init)
        for task in tasks:
            runs.append(_fit(task))
            log(runs[-1])
    else:
        with ProcessPoolExecutor(args.jobs, initializer=_init_worker, initargs=init) as pool:
            for r in pool.map(_fit, tasks):
                runs.append(r)
                log(r)

    points = []  # one per gate run: the gate as trained, each baseline pruned to its zeros
    for g in (r for r in runs if r["activation"] in args.gates or r["l1"] is None):
        point = {
            "activation": g["activation"],
            "l1": g["l1"],
            "target": g.get("target"),
            "seed": g["seed"],
            "level": g["zeros_train"],
            "gate": g["metrics"],
        }
        for b in (r for r in runs if r["activation"] in args.baselines and r["seed"] == g["seed"]):
            point[b["activation"]] = pruned_scores(b, data, g["zeros_train"])
        points.append(point)
    for r in runs:
        for key in ("Y_train", "Y_test", "Y_visible", "components", "decoder", "remap"):
            r.pop(key, None)
    return {
        "args": vars(args),
        "data": {
            "catalog": args.catalog,
            "train_items": data.X_train.shape[0],
            "test_items": data.X_test.shape[0],
            "keywords": len(data.vocabulary),
            "planted": data.planted is not None,
        },
        "runs": runs,
        "points": points,
        "seconds": time.perf_counter() - start,
    }


def _ms(values: Sequence[float], digits: int = 3) -> str:
    v = np.asarray(values, dtype=float)
    if len(v) > 1:
        return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"
    return f"{v.mean():.{digits}f}"


DRIFT_EPOCHS = (5, 10, 20, 40, 80)


def _drift_table(result: dict[str, Any]) -> list[str]:
    """Zeros on the validation items epoch by epoch: whether a setting's sparsity settles or
    keeps rising as training runs longer (which a larger catalog makes it do)."""
    runs = [r for r in result["runs"] if r.get("zeros_by_epoch")]
    if not runs:
        return []
    lines = [
        "",
        "Share of zero activations on the validation items by epoch, as training went (mean "
        "over the seeds still training; the model kept is the best epoch's), and the optimiser "
        "steps per epoch:",
        "",
        "| model | L1 or target | steps/epoch | "
        + " | ".join(f"epoch {e}" for e in DRIFT_EPOCHS)
        + " | last epoch | best epoch |",
        "|---|---|---|" + "---|" * (len(DRIFT_EPOCHS) + 2),
    ]
    for a, setting in dict.fromkeys((r["activation"], _setting(r)) for r in runs):
        rs = [r for r in runs if (r["activation"], _setting(r)) == (a, setting)]
        cells = []
        for e in DRIFT_EPOCHS:
            vals = [r["zeros_by_epoch"][e - 1] for r in rs if len(r["zeros_by_epoch"]) >= e]
            cells.append(f"{np.mean(vals):.2f}" if vals else "-")
        last = _ms([r["zeros_by_epoch"][-1] for r in rs], 2)
        best = _ms([r["zeros_by_epoch"][max(r["best_epoch"], 1) - 1] for r in rs], 2)
        lines.append(
            f"| {a} | {setting} | {rs[0]['steps_per_epoch']} | "
            + " | ".join(cells)
            + f" | {last} | {best} |"
        )
    return lines


def _setting(run: dict[str, Any]) -> str:
    """What sets a run's sparsity: its L1 weight, or for a targeted gate its target."""
    if run.get("target") is not None:
        return f"target {run['target']:g}"
    if run["l1"] is None:
        return "chosen"
    return f"{run['l1']:g}"


def report_markdown(result: dict[str, Any], command: str) -> str:
    d, args = result["data"], result["args"]
    lines = [
        f"Command: `{command}`",
        "",
        f"Catalog `{d['catalog']}`: {d['train_items']} train / {d['test_items']} test items, "
        f"{d['keywords']} keywords; {args['topics']} topics; seeds {args['seeds']}; "
        f"max {args['max_epochs']} epochs; {result['seconds']:.0f} s in all. Mean ± std over "
        "seeds.",
        "",
        "As trained:",
        "",
    ]
    metrics = [
        ("recall_at_10", "recall@10"),
        ("zero_fraction", "zeros (test)"),
        ("active_topics", "active topics"),
    ]
    if any("genre_map" in r["metrics"] for r in result["runs"]):
        metrics.append(("genre_map", "genre mAP"))
    if d["planted"]:
        metrics.append(("topic_f1", "topic F1"))
    lines.append(
        "| model | L1 or target | " + " | ".join(m[1] for m in metrics) + " | epochs | train s |"
    )
    lines.append("|---|---|" + "---|" * (len(metrics) + 2))
    keys = dict.fromkeys((r["activation"], _setting(r)) for r in result["runs"])
    for a, l1 in keys:
        rs = [r for r in result["runs"] if (r["activation"], _setting(r)) == (a, l1)]
        cells = [_ms([r["metrics"][k] for r in rs]) for k, _ in metrics]
        lines.append(
            f"| {a} | {l1} | "
            + " | ".join(cells)
            + f" | {_ms([r['epochs'] for r in rs], 0)} | "
            + f"{_ms([r.get('train_seconds', r['seconds']) for r in rs], 0)} |"
        )
    baselines = args["baselines"]
    for metric, label in (("recall_at_10", "recall@10"), ("topic_f1", "topic F1")):
        if metric == "topic_f1" and not d["planted"]:
            continue
        lines += [
            "",
            f"At equal sparsity, {label} (each baseline pruned, seed by seed, to the gate run's "
            "share of zeros on the training items; Δ = gate − best pruned baseline, mean; "
            "'> 1 std' when Δ exceeds the larger std of the two, the issue's test; paired Δ: "
            "the same difference seed by seed, mean ± std, which removes the seed-to-seed "
            "spread the two share):",
            "",
            "| gate | L1 or target | zeros (train) | gate | "
            + " | ".join(f"{b} pruned" for b in baselines)
            + " | Δ | > 1 std | paired Δ |",
            "|---|---|---|---|" + "---|" * len(baselines) + "---|---|---|",
        ]
        for a, l1 in dict.fromkeys((p["activation"], _setting(p)) for p in result["points"]):
            ps = [p for p in result["points"] if (p["activation"], _setting(p)) == (a, l1)]
            gate = np.array([p["gate"][metric] for p in ps])
            best, best_vals = None, None
            for b in baselines:
                vals = np.array([p[b][metric] for p in ps if b in p])
                if len(vals) and (best_vals is None or vals.mean() > best_vals.mean()):
                    best, best_vals = b, vals
            cells = [_ms([p[b][metric] for p in ps if b in p]) for b in baselines]
            delta = gate.mean() - best_vals.mean() if best_vals is not None else float("nan")
            std = max(
                gate.std(ddof=1) if len(gate) > 1 else 0.0,
                best_vals.std(ddof=1) if best_vals is not None and len(best_vals) > 1 else 0.0,
            )
            lines.append(
                f"| {a} | {l1} | {_ms([p['level'] for p in ps], 2)} | {_ms(gate)} | "
                + " | ".join(cells)
                + f" | {delta:+.3f} ({best}) | {'yes' if delta > std else 'no'} | "
                + _ms([p["gate"][metric] - p[best][metric] for p in ps if best in p])
                + " |"
            )
    return "\n".join([*lines, *_drift_table(result)]) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--catalog", choices=("tmdb", "planted", "large", "medium", "short"), required=True
    )
    parser.add_argument("--input", help="the catalog file, for --catalog tmdb")
    parser.add_argument("--min-df", type=int, help="default: 3, and 2 on the themed catalog")
    parser.add_argument("--topics", type=int, default=DEFAULTS.n_topics)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--gates", nargs="*", default=list(GATES))
    parser.add_argument("--baselines", nargs="*", default=list(BASELINES))
    parser.add_argument(
        "--chosen",
        action="store_true",
        help="also train overlap_auto (no L1 weight or target): it chooses its sparsity",
    )
    parser.add_argument("--l1", nargs="+", type=float, default=list(L1_VALUES))
    parser.add_argument(
        "--targets",
        nargs="+",
        type=float,
        default=list(TARGET_VALUES),
        help="shares of zeros a targeted gate is held to (instead of --l1)",
    )
    parser.add_argument("--max-epochs", type=int, default=DEFAULTS.max_epochs)
    parser.add_argument("--no-genre-map", action="store_true", help="skip the genre probe")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (training only)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (processes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument(
        "--output", required=True, help="folder for equal_sparsity.md/.json and frontier.png"
    )
    parser.add_argument(
        "--render", action="store_true", help="only rewrite the .md from the folder's .json"
    )
    args = parser.parse_args(argv)
    out = Path(args.output)
    if args.render:
        result = json.loads((out / "equal_sparsity.json").read_text(encoding="utf-8"))
        command = result.get("command", "python -m lab.equal_sparsity")
        text = report_markdown(result, command)
        (out / "equal_sparsity.md").write_text(text, encoding="utf-8")
        _draw(result, out)
        print(text)
        return 0
    torch.set_num_threads(args.threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    result = run(args)
    command = "python -m lab.equal_sparsity " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])
    )
    result["command"] = command
    out.mkdir(parents=True, exist_ok=True)
    (out / "equal_sparsity.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    text = report_markdown(result, command)
    (out / "equal_sparsity.md").write_text(text, encoding="utf-8")
    _draw(result, out)
    print(text)
    return 0


def _draw(result: dict[str, Any], out: Path) -> None:
    """frontier.png beside the tables, where matplotlib (the `study` extra) is installed."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        print("matplotlib is not installed: no frontier.png", file=sys.stderr)
        return
    from lab.frontier import write_frontier

    write_frontier(result, out / "frontier.png")


if __name__ == "__main__":
    sys.exit(main())
