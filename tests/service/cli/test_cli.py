"""The `topicproj` command line: train, inspect, evaluate, and its one-line errors."""

from __future__ import annotations

import csv
import functools
import json
import math
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import topicproj.models.data.synthetic as synthetic_module
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.synthetic import make_synthetic_catalog
from topicproj.service.cli.main import main

REPO = Path(__file__).resolve().parents[3]
SMALL = {"n_items": 200, "n_topics": 4, "keywords_per_topic": 6, "n_filler_keywords": 20}


# -- helpers -----------------------------------------------------------------------------------


def run(capsys, *argv: object) -> tuple[int, str, str]:
    """`main(argv)` in process: (exit status, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line_error(err: str, command: str, *fragments: str) -> None:
    assert err.endswith("\n")
    assert err.count("\n") == 1, err
    assert err.startswith(f"topicproj {command}: error: "), err
    for fragment in fragments:
        assert fragment in err


def small_keywords() -> list[list[str]]:
    return make_synthetic_catalog(**SMALL).catalog.keywords


def write_jsonl(path: Path) -> Path:
    synthetic = make_synthetic_catalog(**SMALL)
    c = synthetic.catalog
    with open(path, "w", encoding="utf-8") as f:
        for i, k, g in zip(c.ids, c.keywords, c.genres, strict=True):
            f.write(json.dumps({"id": i, "keywords": k, "genres": g}) + "\n")
    return path


def write_csv_with_broken_row(path: Path, broken_row: int) -> Path:
    """The small synthetic catalog as CSV (keywords as JSON lists), one row's JSON broken."""
    rows = [[f"item{i}", json.dumps(k)] for i, k in enumerate(small_keywords())]
    rows[broken_row - 1][1] = '["unterminated'
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "keywords"])
        writer.writerows(rows)
    return path


# -- train (once through a real subprocess) ----------------------------------------------------


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("cli") / "model"
    argv = ["--topics", "4", "--min-df", "2", "--max-epochs", "3", "--quiet", "--output", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "topicproj.service.cli", "train", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc, out


def test_train_on_the_synthetic_catalog_writes_a_loadable_model(trained):
    proc, out = trained
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "trained" not in proc.stderr  # --quiet: no summary
    assert "Traceback" not in proc.stderr
    model = TopicModel.load(out, device="cpu")
    assert model.n_topics == 4
    assert model.n_epochs_ <= 3
    assert model.data_summary_["source"] == "synthetic"
    assert model.data_summary_["items"] == 3000
    assert model.vocabulary_.min_df == 2
    assert model.transform([["alien", "space"]]).shape == (1, 4)


@pytest.fixture
def model_dir(trained) -> Path:
    proc, out = trained
    if proc.returncode != 0:
        pytest.fail(f"training failed: {proc.stderr}")
    return out


# -- inspect -----------------------------------------------------------------------------------


def test_inspect_json(model_dir, capsys):
    rc, out, err = run(capsys, "inspect", "--model", model_dir, "--json")
    assert rc == 0
    assert err == ""
    info = json.loads(out)
    assert info["topics"] == 4
    assert info["activation"] == "overlap"
    assert info["keywords"] == len(TopicModel.load(model_dir, device="cpu").vocabulary_)
    assert info["data"]["items"] == 3000
    assert "history" not in info["training"]
    table = info["topic_table"]
    assert [t["topic"] for t in table] == [0, 1, 2, 3]
    for topic in table:
        assert len(topic["top_keywords"]) == 10
        assert all(isinstance(k, str) and k for k in topic["top_keywords"])
        for key in ("slope", "threshold", "sharpness", "bias"):
            assert isinstance(topic[key], float)
            assert math.isfinite(topic[key])


def test_inspect_top(model_dir, capsys):
    rc, out, _ = run(capsys, "inspect", "--model", model_dir, "--json", "--top", "3")
    assert rc == 0
    assert all(len(t["top_keywords"]) == 3 for t in json.loads(out)["topic_table"])


def test_inspect_prints_a_table(model_dir, capsys):
    rc, out, err = run(capsys, "inspect", "--model", model_dir)
    assert rc == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"{model_dir}: 4 topics, activation overlap, " + lines[0].split(", ")[-1]
    assert lines[0].endswith(" keywords")
    assert lines[1] == "trained from scratch (no parent)"
    # the default gate chose its sparsity on the validation items: the line, then the curve
    s = next(i for i, line in enumerate(lines) if line.startswith("sparsity: "))
    assert lines[s].startswith("sparsity: chosen on ")
    assert " of 4 topics active per item on average" in lines[s]
    assert lines[s + 1].split()[:5] == ["level", "zeros", "active", "recall@10", "±"]
    curve = lines[s + 2 :]
    assert len(curve) == 10 and sum(line.endswith("<- chosen") for line in curve) == 1
    assert lines[2].split() == [
        "topic",
        "slope",
        "tau",
        "beta",
        "bias",
        "label",
        "/",
        "top",
        "keywords",
    ]
    rows = lines[3:s]  # then: sparsity
    assert len(rows) == 8  # per topic: its parameters and label, then its keywords
    model = TopicModel.load(model_dir, device="cpu")
    top, labels = model.top_keywords(10), model.labels()
    for k in range(4):
        head, keywords = rows[2 * k], rows[2 * k + 1]
        assert head.split()[0] == str(k) and head.endswith(labels[k])
        assert keywords.strip() == ", ".join(top[k])


def test_inspect_emits_no_torch_warning(model_dir, capsys):
    # torch warns once per process unless told otherwise; an earlier test may have seen it.
    was = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rc, _, _ = run(capsys, "inspect", "--model", model_dir, "--json")
    finally:
        torch.set_warn_always(was)
    assert rc == 0
    assert [str(w.message) for w in caught if "requires_grad" in str(w.message)] == []


def test_inspect_a_damaged_model_exits_2(model_dir, tmp_path, capsys):
    damaged = Path(shutil.copytree(model_dir, tmp_path / "damaged"))
    weights = damaged / "weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    rc, out, err = run(capsys, "inspect", "--model", damaged)
    assert rc == 2
    assert out == ""
    assert_one_line_error(err, "inspect", str(damaged), "checksum")


def test_inspect_a_missing_model_exits_2(tmp_path, capsys):
    rc, _, err = run(capsys, "inspect", "--model", tmp_path / "nowhere")
    assert rc == 2
    assert_one_line_error(err, "inspect", "nowhere", "not found")


# -- train --data ------------------------------------------------------------------------------


def test_train_on_a_jsonl_file(tmp_path, capsys):
    data = write_jsonl(tmp_path / "items.jsonl")
    out = tmp_path / "model"
    argv = ["--topics", "4", "--min-df", "2", "--max-epochs", "3", "--quiet", "--output", out]
    rc, stdout, stderr = run(capsys, "train", "--input", data, *argv)
    assert rc == 0, stderr
    assert stdout == ""
    model = TopicModel.load(out, device="cpu")
    assert model.n_topics == 4
    assert model.data_summary_["source"] == str(data)
    assert model.data_summary_["items"] == 200
    assert model.data_summary_["skipped_rows"] == 0


def test_train_on_an_empty_file_exits_2(tmp_path, capsys):
    data = tmp_path / "empty.csv"
    data.write_bytes(b"")
    rc, out, err = run(capsys, "train", "--input", data, "--output", tmp_path / "model")
    assert rc == 2
    assert out == ""
    assert_one_line_error(err, "train", str(data), "empty")
    assert not (tmp_path / "model").exists()


def test_train_on_a_broken_row_exits_2_naming_the_row(tmp_path, capsys):
    data = write_csv_with_broken_row(tmp_path / "broken.csv", broken_row=57)
    rc, out, err = run(capsys, "train", "--input", data, "--output", tmp_path / "model")
    assert rc == 2
    assert out == ""
    assert_one_line_error(err, "train", str(data), "row 57", "invalid JSON")
    assert not (tmp_path / "model").exists()


def test_skip_bad_rows_trains_past_the_broken_row(tmp_path, capsys):
    data = write_csv_with_broken_row(tmp_path / "broken.csv", broken_row=57)
    out = tmp_path / "model"
    argv = ["--topics", "4", "--min-df", "2", "--max-epochs", "2", "--output", out]
    rc, _, err = run(capsys, "train", "--input", data, "--skip-bad-rows", *argv)
    assert rc == 0, err
    assert "read 199 items" in err
    assert "1 bad rows skipped" in err
    assert "row 57" in err
    model = TopicModel.load(out, device="cpu")
    assert model.data_summary_["items"] == 199
    assert model.data_summary_["skipped_rows"] == 1


def test_an_unknown_format_is_a_usage_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--format", "nonsense", "--output", str(tmp_path / "model")])
    assert info.value.code == 2
    assert "invalid choice: 'nonsense'" in capsys.readouterr().err


def test_an_unknown_activation_in_evaluate_exits_2(tmp_path, capsys):
    rc, _, err = run(capsys, "evaluate", "--activations", "relu,sigmoid", "--output", tmp_path)
    assert rc == 2
    assert_one_line_error(err, "evaluate", "sigmoid")


# -- evaluate ----------------------------------------------------------------------------------


def test_evaluate_writes_a_report(tmp_path, capsys, monkeypatch):
    # The full default synthetic catalog takes minutes to evaluate on 2 cores; the CLI runs
    # unchanged on a smaller catalog from the same generator (it has the planted ground truth).
    monkeypatch.setattr(
        synthetic_module,
        "make_synthetic_catalog",
        functools.partial(synthetic_module.make_synthetic_catalog, **{**SMALL, "n_items": 400}),
    )
    report_dir = tmp_path / "report"
    rc, out, err = run(
        capsys,
        "evaluate",
        *("--topics", "4", "--min-df", "2", "--activations", "relu,overlap", "--seeds", "0"),
        *("--no-sklearn", "--quiet", "--output", report_dir),
    )
    assert rc == 0, err
    assert out == ""
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert report["seeds"] == [0]
    assert report["data"]["items"] == 400
    by_name = {m["name"]: m for m in report["models"]}
    assert "projector (relu)" in by_name
    assert "projector (overlap)" in by_name
    assert not any("scikit-learn" in name for name in by_name)
    for name in ("projector (relu)", "projector (overlap)"):
        for metric in ("recall_at_10", "topic_f1"):
            value = by_name[name][metric]
            assert set(value) == {"mean", "std"}
            assert 0.0 <= value["mean"] <= 1.0
            assert 0.0 <= value["std"] <= 1.0
    markdown = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "| projector (relu) |" in markdown
    assert "| projector (overlap) |" in markdown
    assert "topicproj evaluate" in markdown


# -- serve's flags, derived from Settings -------------------------------------------------------


def serve_settings(*argv: str):  # type: ignore[no-untyped-def]
    from topicproj.service.cli.main import build_parser
    from topicproj.service.settings import Settings

    args = build_parser().parse_args(["serve", *argv])
    return Settings(_cli_settings_source=args.settings_source(parsed_args=args))


def test_serve_has_a_flag_with_help_for_every_setting(capsys):
    from topicproj.service.settings import Settings

    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name, field in Settings.model_fields.items():
        assert f"--{name.replace('_', '-')}" in text, name
        assert field.description and " ".join(field.description.split()[:3]) in text, name


def test_serve_flags_set_settings_and_win_over_variables(monkeypatch):
    monkeypatch.setenv("TOPICPROJ_MAX_WAIT_MS", "7")
    monkeypatch.setenv("TOPICPROJ_MAX_QUEUED_JOBS", "9")
    s = serve_settings("--max-wait-ms", "5", "--metrics-port", "none", "--wait-when-idle")
    assert s.max_wait_ms == 5.0 and s.metrics_port is None and s.wait_when_idle is True
    assert s.max_queued_jobs == 9  # no flag: the variable
    assert serve_settings().max_wait_ms == 7.0


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.startswith("topicproj ")


def test_train_flags_are_the_training_options(capsys):
    from topicproj.models.core.options import TrainOptions

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for f in TrainOptions.fields():
        assert str(f.metadata.get("flag", "--" + f.name.replace("_", "-"))) in text, f.name


def test_a_child_version_from_the_command_line_diff_label_and_inspect(tmp_path, capsys):
    first = write_jsonl(tmp_path / "first.jsonl")
    parent, child = tmp_path / "parent", tmp_path / "child"
    quick = ["--min-df", "2", "--max-epochs", "6", "--learning-rate", "0.01", "--quiet"]
    rc, _, err = run(capsys, "train", "--input", first, "--topics", "4", *quick, "--output", parent)
    assert rc == 0, err
    rc, _, err = run(capsys, "models", "label", "--model", parent, "--set", "2", "Heists")
    assert rc == 0, err
    # The later catalog: the same items and more of them, with a keyword the parent never saw.
    later = tmp_path / "later.jsonl"
    rows = first.read_text().splitlines()
    extra = [json.dumps({"id": f"n{i}", "keywords": ["brand new", "fresh"]}) for i in range(5)]
    later.write_text("\n".join(rows + rows[:100] + extra) + "\n")
    # No --topics: a child takes its parent's options; a different count is refused.
    rc, _, err = run(capsys, "train", "--input", later, "--parent", parent, "--topics", "5",
                     "--quiet", "--output", child)  # fmt: skip
    assert rc == 2 and "keeps its parent's topics" in err
    rc, _, err = run(capsys, "train", "--input", later, "--parent", parent, *quick[4:],
                     "--max-epochs", "6", "--output", child)  # fmt: skip
    assert rc == 0, err
    model, before = TopicModel.load(child, device="cpu"), TopicModel.load(parent, device="cpu")
    assert model.n_topics == 4 and "brand new" in model.vocabulary_
    assert model.lineage_.parent == before.version_
    assert model.lineage_.keywords_added >= 2  # and filler keywords that reached min_df

    rc, out, err = run(capsys, "models", "diff", parent, child, "--json")
    assert rc == 0, err
    diff = json.loads(out)
    assert [t["similarity"] for t in diff["topics"]] == pytest.approx(model.lineage_.similarity)
    assert diff["topics"][2]["label_a"] == "Heists"
    assert diff["topics"][2]["label_b"] == ("Heists" if diff["topics"][2]["kept"] else
                                             model.labels()[2])  # fmt: skip
    rc, out, _ = run(capsys, "models", "diff", parent, child)
    assert f"{model.lineage_.kept} of 4 topics of B keep A's meaning" in out

    rc, out, _ = run(capsys, "inspect", "--model", child, "--json")
    assert json.loads(out)["lineage"]["parent"] == before.version_
    rc, out, err = run(capsys, "models", "label", "--model", child, "--clear", "2")
    assert rc == 0 and out.splitlines()[2].split(None, 1)[1] == model.top_keywords(3)[2][0] + (
        " / " + " / ".join(model.top_keywords(3)[2][1:])
    )
    rc, _, err = run(capsys, "models", "label", "--model", child, "--set", "9", "x")
    assert rc == 2 and "not a topic" in err
