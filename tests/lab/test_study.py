"""The activation study end to end in its smoke setting, so that the study cannot silently break."""

from __future__ import annotations

import json
import re

import pytest

from lab.study.report import write_study
from lab.study.run import StudyConfig, pareto_frontier, run_study
from topicproj.models.core.activation import ACTIVATIONS

from ..models.factories import small_synthetic

FIGURES = (
    "planted_noise.png",
    "planted_short.png",
    "planted_pruned.png",
    "real.png",
    "tradeoff.png",
    "tradeoff_threshold.png",
    "learned_parameters.png",
    "surfaces.png",
    "dead_topics.png",
    "cost.png",
)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    config = StudyConfig.smoke()
    # A small catalog with genres stands in for the real one: every part runs, in seconds.
    catalog = small_synthetic(n_items=300, seed=1).catalog
    study = run_study(config, catalog, progress=False)
    return write_study(study, tmp_path_factory.mktemp("s") / "study", "topicproj study --smoke")


def test_every_file_is_written_and_every_png_is_a_png(study_dir):
    names = {p.name for p in study_dir.iterdir()}
    assert {"study.md", "study.json", *FIGURES} <= names
    for name in FIGURES:
        data = (study_dir / name).read_bytes()
        assert data[:8] == PNG_MAGIC, name
        assert len(data) > 5_000, name  # a figure, not an empty canvas
    # written atomically: no temporary folder left beside it
    assert [p.name for p in study_dir.parent.iterdir()] == ["study"]


def test_tables_cover_every_activation_and_numbers_are_in_range(study_dir):
    study = json.loads((study_dir / "study.json").read_text())
    config = StudyConfig.smoke()
    assert len(study["planted"]["cells"]) == 3  # (0, .2), (1/3, .2), (1/3, .5)
    for cell in study["planted"]["cells"]:
        by = {m["activation"]: m for m in cell["models"] if m["activation"]}
        assert set(by) == set(ACTIVATIONS)
        assert {r["name"] for r in cell["pruned"]} == {m["name"] for m in cell["models"]}
        for r in cell["pruned"]:
            for point in r["levels"].values():
                assert 0.0 <= point["topic_f1"]["mean"] <= 1.0
        for m in cell["models"] + cell["models_short"]:
            for key in ("topic_precision", "topic_recall", "topic_f1", "zero_fraction"):
                assert 0.0 <= m[key]["mean"] <= 1.0, key
    for block in study["real"]["by_topics"]:
        names = {m["name"] for m in block["models"]}
        assert {f"projector ({a})" for a in ACTIVATIONS} <= names
        assert "scikit-learn NMF (Frobenius)" in names and "scikit-learn LDA (batch)" in names
        for m in block["models"]:
            assert m["runs"] == len(config.seeds)
            assert 0.0 <= m["recall_at_10"]["mean"] <= 1.0
    assert {p["activation"] for p in study["tradeoff"]["points"]} == set(
        config.tradeoff_activations
    )
    assert {p["activation"] for p in study["tradeoff"]["threshold"]} == set(ACTIVATIONS)
    learned = study["learned"]
    assert len(learned["threshold"]) == config.topics[0] * len(config.seeds)
    assert all(t >= 0 for t in learned["threshold"])
    assert {r["activation"] for r in study["dead"]} == set(ACTIVATIONS)
    assert {r["name"] for r in study["cost"]["rows"]} == {*ACTIVATIONS, "plain relu"}
    assert all(r["items_per_second_median"] > 0 for r in study["cost"]["rows"])
    assert study["targets"] and all(isinstance(t["met"], bool) for t in study["targets"])
    # the per-epoch dead-topic series has one entry per epoch trained
    for run in study["real"]["runs"]:
        if run["activation"]:
            assert len(run["dead_history"]) == run["epochs"] >= 1


def test_markdown_agrees_with_json(study_dir):
    study = json.loads((study_dir / "study.json").read_text())
    md = (study_dir / "study.md").read_text()
    assert "topicproj study --smoke" in md
    for heading in ("## 1.", "## 2.", "## 3.", "## 4.", "## 5.", "## 6.", "## Targets"):
        assert heading in md
    # every planted F1 and every real recall@10 in the JSON appears in the markdown, as printed
    for cell in study["planted"]["cells"]:
        for m in cell["models"]:
            assert f"{m['topic_f1']['mean']:.3f}" in md
    for block in study["real"]["by_topics"]:
        for m in block["models"]:
            assert f"{m['recall_at_10']['mean']:.3f}" in md
    for t in study["targets"]:
        assert re.search(re.escape(f"| {t['target']} | {t['measured']} |"), md)


def test_pareto_frontier_keeps_only_undominated_points():
    def point(a, z, r):
        return {
            "activation": a,
            "l1": 0.0,
            "zero_fraction": {"mean": z, "std": 0.0},
            "recall_at_10": {"mean": r, "std": 0.0},
        }

    front = pareto_frontier([point("a", 0.1, 0.5), point("b", 0.5, 0.4), point("c", 0.4, 0.3)])
    assert [f["activation"] for f in front] == ["a", "b"]


def test_cli_study_smoke_writes_the_folder(tmp_path, monkeypatch):
    """The subcommand parses and wires through; the study itself is stubbed to stay quick."""
    import lab.study.run as study_module
    from topicproj.service.cli.main import main

    seen = {}

    def fake_run(config, catalog, progress):
        seen["config"] = config
        return {"stub": True}

    def fake_write(study, out, command, plots=True):
        seen["command"] = command
        return tmp_path / "out"

    monkeypatch.setattr(study_module, "run_study", fake_run)
    monkeypatch.setattr("lab.study.report.write_study", fake_write)
    argv = ["study", "--smoke", "--seeds", "3,4", "--output", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 0
    assert seen["config"].seeds == (3, 4) and seen["config"].max_epochs == 4
    assert seen["command"].startswith("topicproj study --smoke")
    assert main(["study", "--seeds", "x", "--output", str(tmp_path / "o2"), "--quiet"]) == 2
