"""The default gate's sparsity choice, scored level by level on the test items.

Training chooses the overlap gate's share of zeros from a curve of levels measured on the
validation items and a sample of training items (`training/sparsity.py`). This trains the
default model once per seed and scores every level it tried on the shared split's test items
(recall@10 of a hidden keyword, zeros, and on planted catalogs active-topic F1), so one run shows
what the rule chose, what each other level would have given, and the validation and training
curves it chose from. Since the choice only raises thresholds after training, the chosen level's
row is exactly the default model's score; a different rule can be read off the same file.

    python -m lab.sparsity_levels --catalog tmdb \\
        --input ../shared/data/tmdb_5000_movies.csv.zip --topics 50 --seeds 0,1,2,3,4 \\
        --output reports/levels/tmdb50.json

Catalogs as `equal_sparsity` (`tmdb`, `planted`, `large`, `medium`, `short`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lab import scoring
from lab.equal_sparsity import build_data
from lab.evaluation import EvaluationData, projector_candidate
from topicproj.models.training import sparsity


def run_seed(data: EvaluationData, topics: int, seed: int, **params: Any) -> dict[str, Any]:
    """Train the default model; score each level of its choice on the test items."""
    seen: dict[str, Any] = {}
    choose = sparsity.choose_sparsity

    def recording(projector, decoder, X_fit, X_val, seed_, device):  # type: ignore[no-untyped-def]
        seen["projector"] = projector
        seen["trained"] = projector.activation.threshold.detach().clone()
        seen["taus"] = sparsity.level_thresholds(projector, X_fit, seed_, device)
        return choose(projector, decoder, X_fit, X_val, seed_, device)

    sparsity.choose_sparsity = recording  # the loop looks it up at call time
    try:
        start = time.perf_counter()
        fitted = projector_candidate("overlap", topics, 1, **params).fit(data, seed)
        seconds = time.perf_counter() - start
    finally:
        sparsity.choose_sparsity = choose
    act = seen["projector"].activation
    chosen = act.threshold.detach().clone()
    test = []
    for tau in seen["taus"]:
        with torch.no_grad():
            act.threshold.copy_(torch.maximum(tau, seen["trained"]))
        recall, _ = scoring.ranking_metrics(fitted.scores(data.visible), data.visible, data.hidden)
        Y = np.asarray(fitted.project(data.X_test))
        level = {"recall_at_10": float(recall), "zeros": float((Y <= 0).mean())}
        if data.planted is not None and data.test_topics is not None:
            f1 = scoring.planted_topic_scores(Y, fitted.components, data.planted, data.test_topics)
            level["topic_f1"] = f1["topic_f1"]
        test.append(level)
    with torch.no_grad():
        act.threshold.copy_(chosen)
    result = fitted.model.train_result_
    return {
        "seed": seed,
        "seconds": seconds,
        "epochs": fitted.model.n_epochs_,
        "choice": result.sparsity,
        "test": test,
    }


def table(runs: list[dict[str, Any]]) -> str:
    """Mean over seeds of the chosen level's test scores, and every level's."""
    lines = [
        "| level | zeros (test) | recall@10 (test) | topic F1 | chosen on seeds |",
        "|---|---|---|---|---|",
    ]
    n_levels = len(runs[0]["test"])
    for i in range(n_levels):
        rows = [r["test"][i] for r in runs]
        f1 = [x["topic_f1"] for x in rows if "topic_f1" in x]
        lines.append(
            f"| {runs[0]['choice']['levels'][i]['quantile']:.1f} "
            f"| {np.mean([x['zeros'] for x in rows]):.3f} "
            f"| {np.mean([x['recall_at_10'] for x in rows]):.4f} "
            f"| {f'{np.mean(f1):.3f}' if f1 else '–'} "
            f"| {', '.join(str(r['seed']) for r in runs if r['choice']['chosen'] == i) or '–'} |"
        )
    chosen = [r["test"][r["choice"]["chosen"]] for r in runs]
    lines.append(
        f"\nchosen: recall@10 {_ms([c['recall_at_10'] for c in chosen], 4)}, zeros "
        f"{_ms([c['zeros'] for c in chosen])}"
        + (f", topic F1 {_ms([c['topic_f1'] for c in chosen])}" if "topic_f1" in chosen[0] else "")
        + f"; {np.mean([r['epochs'] for r in runs]):.0f} epochs"
    )
    return "\n".join(lines)


def _ms(values: Sequence[float], digits: int = 3) -> str:
    v = np.asarray(values, dtype=float)
    return (
        f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"
        if len(v) > 1
        else f"{v[0]:.{digits}f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--catalog", choices=("tmdb", "planted", "large", "medium", "short"), required=True
    )
    parser.add_argument("--input", help="the catalog file, for --catalog tmdb")
    parser.add_argument("--min-df", type=int)
    parser.add_argument("--topics", type=int, default=50)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--max-epochs", type=int, help="default: the training default")
    parser.add_argument("--output", required=True, help="a .json file, rewritten after each seed")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    data = build_data(args.catalog, args.input, args.min_df)
    params = {} if args.max_epochs is None else {"max_epochs": args.max_epochs}
    runs = []
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    for seed in (int(s) for s in args.seeds.split(",")):
        runs.append(run_seed(data, args.topics, seed, **params))
        out.write_text(json.dumps({"args": vars(args), "runs": runs}, indent=1), encoding="utf-8")
        r = runs[-1]
        print(
            f"seed {seed}: level {r['choice']['chosen']} "
            f"recall@10 {r['test'][r['choice']['chosen']]['recall_at_10']:.4f} "
            f"({r['epochs']} epochs, {r['seconds']:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    print(table(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
