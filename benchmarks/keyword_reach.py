"""How many topics one or two keywords fire, under each activation, and the weights that decide.

The seed of the overlap gate: with a rectified dot product, a lone shared keyword such as
"love" fires every topic whose weights include it. This prints, for models trained on the same
catalog with different activations, the number of topics each query activates (activation > 0),
the number whose weights contain its keywords at all, for PReLU the number that are not exactly
zero (its negative side never is), and, for the gate, how many topics the same weights would
fire with the gate removed. Then, per model, the topics "love" alone fires, with the
numbers that make them fire: h = x.w_k + b_k, the overlap J_k, the threshold tau_k and the
sharpness beta_k.

    python -m benchmarks reach --root runs/love --activations relu,prelu,overlap --seeds 0,1,2,3,4

Models are trained beforehand (see benchmarks/RESULTS.md for the commands); no timing here.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from topicproj.models.core.topic_model import TopicModel

QUERIES = [
    "love",
    "murder",
    "alien",
    "friendship",
    "dystopia",
    "new york",
    "love|friendship",
    "love|war",
    "alien|space",
    "murder|detective",
    "dystopia|rebellion",
]
DETAIL = "love"


def _inputs(model: TopicModel, keywords: list[str]) -> tuple[torch.Tensor, ...]:
    batch = model.vocabulary_.map_batch([keywords])
    return batch.torch_inputs(model.device_)


@torch.no_grad()
def reach(model: TopicModel, keywords: list[str]) -> dict[str, object]:
    """Counts for one query on one model, and the per-topic numbers behind them."""
    projector = model.projector_
    indices, offsets, weights = _inputs(model, keywords)
    known = int(indices.numel())
    h, overlap = projector.pre_activation(indices, offsets, weights)
    h, overlap = h[0].clone(), overlap[0].clone()
    y = projector.activation(h[None], overlap[None])[0]
    tau, beta = projector.activation.tau_beta()
    rows = projector.keyword_topics[indices]  # (known keywords, topics)
    return {
        "known": known,
        "active": int((y > 0).sum()),
        "nonzero": int((y != 0).sum()),
        "containing": int((rows > 0).any(dim=0).sum()) if known else 0,
        "ungated": int((h > 0).sum()),
        "h": h.numpy(),
        "J": overlap.numpy(),
        "tau": tau.numpy(),
        "beta": beta.numpy(),
        "y": y.numpy(),
    }


def _spread(values: list[int]) -> str:
    """One seed: the count; several: the mean and, when they differ, the range."""
    a = np.asarray(values, dtype=float)
    if a.min() == a.max():
        return f"{a[0]:.0f}"
    return f"{a.mean():.1f} ({a.min():.0f}–{a.max():.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks reach", description=__doc__)
    parser.add_argument("--root", required=True,
                        help="folder holding one model per activation and seed, as ACTIVATION-SEED")
    parser.add_argument("--activations", default="relu,prelu,overlap")
    parser.add_argument("--seeds", default="0", help="comma-separated; details use the first")
    parser.add_argument("--queries", default=",".join(QUERIES),
                        help="comma-separated queries, keywords of one query joined by |")
    parser.add_argument("--detail", default=DETAIL, help="the query whose topics are listed")
    parser.add_argument("--top", type=int, default=8, help="topics listed per model")
    args = parser.parse_args(argv)

    root = Path(args.root)
    activations = args.activations.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    models = {
        (a, s): TopicModel.load(root / f"{a}-{s}", device="cpu") for a in activations for s in seeds
    }
    first = models[(activations[0], seeds[0])]
    print(f"{len(seeds)} seed(s) ({args.seeds}) per activation; {first.n_topics} topics, "
          f"{len(first.vocabulary_.keywords)} keywords. Cells: topics with an activation > 0, "
          "the mean over the seeds and (min–max); the last row, topics whose weights hold the "
          "keyword at all.")
    print()
    gated = [a for a in activations if a.startswith("overlap")]
    leaky = [a for a in activations if a in ("prelu", "leaky_relu")]  # never exactly zero
    print("| query | " + " | ".join(activations)
          + "".join(f" | {a}: non-zero" for a in leaky)
          + (f" | {gated[0]}'s weights, gate removed |" if gated else " |"))
    print("|---|" + "---:|" * (len(activations) + len(leaky) + (1 if gated else 0)))
    queries = [q.split("|") for q in args.queries.split(",")]
    for q in queries:
        cells = []
        for a in activations:
            rs = [reach(models[(a, s)], q) for s in seeds]
            if not all(r["known"] for r in rs):
                cells.append("unknown")
                continue
            cells.append(_spread([r["active"] for r in rs]))
        for a in leaky:
            cells.append(_spread([reach(models[(a, s)], q)["nonzero"] for s in seeds]))
        if gated:
            cells.append(_spread([reach(models[(gated[0], s)], q)["ungated"] for s in seeds]))
        print(f"| {' + '.join(q)} | " + " | ".join(cells) + " |")
    detail_q = args.detail.split("|")
    held = [_spread([reach(models[(a, s)], detail_q)["containing"] for s in seeds])
            for a in activations]
    held += [""] * (len(leaky) + (1 if gated else 0))
    print(f"| *topics holding \"{' + '.join(detail_q)}\" at all* | " + " | ".join(held) + " |")

    detail = args.detail.split("|")
    for a in activations:
        model = models[(a, seeds[0])]
        r = reach(model, detail)
        labels = model.labels()
        y, h, J, tau, beta = r["y"], r["h"], r["J"], r["tau"], r["beta"]
        order = np.argsort(-y, kind="stable")
        firing = [k for k in order if y[k] > 0]
        print(f"\n`{a}`, seed {seeds[0]}, \"{' + '.join(detail)}\": {r['active']} topics fire"
              + (f"; the first {args.top} and the last one by activation" if len(firing) > args.top
                 else "") + ":\n")
        print("| topic | label | h = x·w + b | overlap J | τ | β | activation |")
        print("|---:|---|---:|---:|---:|---:|---:|")
        shown = firing[: args.top] + (firing[-1:] if len(firing) > args.top else [])
        for k in shown:
            print(f"| {k} | {labels[k]} | {h[k]:.3g} | {J[k]:.4f} | {tau[k]:.4f} | "
                  f"{beta[k]:.1f} | {y[k]:.3g} |")
        negative = int((y < 0).sum())
        if negative:
            print(f"\n{negative} topics get a negative activation (the slope below zero).")
        closed = [k for k in range(len(y)) if h[k] > 0 and y[k] <= 0]
        if closed and a in gated:
            j = J[closed]
            print(f"\n{len(closed)} topics with h > 0 stay at zero because J ≤ τ there "
                  f"(J from {j.min():.4f} to {j.max():.4f}; their τ from "
                  f"{tau[closed].min():.4f} to {tau[closed].max():.4f}).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
