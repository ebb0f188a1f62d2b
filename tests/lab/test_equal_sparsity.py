"""The issue-16 equal-sparsity comparison end to end, in a tiny setting."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lab.equal_sparsity import main
from lab.pruning import prune


def test_one_command_writes_tables_with_baselines_pruned_to_the_gates_zeros(tmp_path):
    out = tmp_path / "es"
    argv = "--catalog planted --topics 12 --seeds 0 --max-epochs 2 --gates overlap "
    argv += f"--baselines relu --l1 0.01 --output {out}"
    assert main(argv.split()) == 0
    result = json.loads((out / "equal_sparsity.json").read_text())
    (point,) = result["points"]
    assert point["activation"] == "overlap" and 0 < point["level"] < 1
    # pruned on the training items to the gate's share of zeros: about as sparse on the test
    assert abs(point["relu"]["zero_fraction"] - point["level"]) < 0.05
    assert 0 <= point["relu"]["topic_f1"] <= 1 and 0 <= point["gate"]["topic_f1"] <= 1
    text = (out / "equal_sparsity.md").read_text()
    assert "At equal sparsity, topic F1" in text and "| overlap | 0.01 |" in text


def test_prune_sets_the_asked_share_of_training_activations_to_zero():
    rng = np.random.default_rng(0)
    Y_train = rng.random((400, 5))
    assert (prune(Y_train, Y_train, 0.7) == 0).mean() == np.float64(0.7)


def test_topicproj_study_runs_the_comparison_with_a_targeted_gate_and_draws_the_frontier(
    tmp_path,
):
    pytest.importorskip("matplotlib")
    from topicproj.service.cli.main import main as topicproj

    out = tmp_path / "study"
    argv = ["study", "--equal-sparsity", "planted", "--topics", "12", "--seeds", "0,1"]
    argv += ["--gates", "overlap_target", "--targets", "0.8", "--max-epochs", "3"]
    assert topicproj([*argv, "--output", str(out)]) == 0
    folder = out / "planted12"
    result = json.loads((folder / "equal_sparsity.json").read_text())
    gate_runs = [r for r in result["runs"] if r["activation"] == "overlap_target"]
    # a targeted gate is held by its multiplier alone: no L1 term, the target recorded
    assert [(r["l1"], r["target"], r["seed"]) for r in gate_runs] == [(0.0, 0.8, 0), (0.0, 0.8, 1)]
    assert {p["seed"] for p in result["points"]} == {0, 1}
    # each run keeps its sparsity epoch by epoch, and the report shows it
    assert all(len(r["zeros_by_epoch"]) == r["epochs"] for r in result["runs"])
    assert all(0 <= z <= 1 for r in result["runs"] for z in r["zeros_by_epoch"])
    text = (folder / "equal_sparsity.md").read_text()
    assert "| overlap_target | target 0.8 |" in text
    assert "zero activations on the validation items by epoch" in text
    assert (folder / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the catalog TMDB needs a file: refused with the flag named, before any training
    assert topicproj(["study", "--equal-sparsity", "tmdb", "--output", str(out / "x")]) == 2
