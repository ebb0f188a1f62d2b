"""The issue-16 equal-sparsity comparison end to end, in a tiny setting."""

from __future__ import annotations

import json

import numpy as np

from models.research.equal_sparsity import main
from models.research.study.run import prune


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
