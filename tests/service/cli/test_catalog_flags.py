"""The command line's catalog flags: a run cannot succeed silently on a catalog read wrongly."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from topicproj.models.core.options import TrainOptions
from topicproj.models.core.topic_model import TopicModel
from topicproj.service.cli.main import main
from topicproj.service.jobs.spec import spec_from_request
from topicproj.service.serving.responses import options_message
from topicproj.v1 import topicproj_pb2 as pb


def comma_csv(path: Path, items: list[list[str]]) -> Path:
    rows = ["id,keywords,title"] + [
        f'm{i},"{", ".join(k)}",Movie {i}' for i, k in enumerate(items) if len(k) >= 2
    ]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_comma_separated_keywords_fail_with_the_flag_to_pass(
    tmp_path, model_dir, catalog_items, capsys
):
    src = comma_csv(tmp_path / "c.csv", catalog_items[:30])
    n = len([k for k in catalog_items[:30] if len(k) >= 2])  # one "keyword" per cell
    out = tmp_path / "o.parquet"
    common = ["project", "--model", str(model_dir), "--input", str(src), "--quiet"]
    assert main([*common, "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{n} of {n} keywords (100%) are unknown to the model" in err
    assert "--separator ','" in err and "--allow-unknown" in err
    assert not out.exists()

    assert main([*common, "--output", str(out), "--separator", ",", "--keep-columns", "title"]) == 0
    t = pq.read_table(out)
    assert t.column_names[:2] == ["id", "title"] and t["title"][0].as_py() == "Movie 0"
    assert min(t["known_keywords"].to_pylist()) > 0

    assert main([*common, "--output", str(out), "--allow-unknown"]) == 0
    assert set(pq.read_table(out)["known_keywords"].to_pylist()) == {0}


def test_train_refuses_list_cells_read_whole(tmp_path, catalog_items, capsys):
    src = comma_csv(tmp_path / "c.csv", catalog_items[:60])
    out = tmp_path / "model"
    argv = ["train", "--input", str(src), "--topics", "3", "--max-epochs", "1", "--quiet"]
    assert main([*argv, "--output", str(out)]) == 2
    assert "pass --separator ','" in capsys.readouterr().err and not out.exists()


def test_named_columns_and_a_non_utf8_row(tmp_path, model_dir, catalog_items, capsys):
    src = tmp_path / "c.jsonl"
    lines = [
        json.dumps({"movie": f"x{i}", "tags": k}).encode() for i, k in enumerate(catalog_items[:9])
    ]
    lines[4] = b'{"movie": "x4", "tags": ["caf\xe9"]}'
    src.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "o.parquet"
    argv = ["project", "--model", str(model_dir), "--input", str(src), "--output", str(out)]
    argv += ["--keywords-column", "tags", "--id-column", "movie", "--quiet"]
    assert main(argv) == 2
    assert f"{src}, row 5: not UTF-8 text (byte 0xe9" in capsys.readouterr().err
    assert main([*argv, "--skip-bad-rows"]) == 0
    assert pq.read_table(out)["id"].to_pylist() == [f"x{i}" for i in range(9) if i != 4]


def test_stop_keywords_and_max_df_at_training(tmp_path, catalog_items):
    stop = tmp_path / "stop.txt"
    common = sorted({k for ks in catalog_items for k in ks})[:2]
    stop.write_text(f"# meta-tags\n{common[0].upper()}\n\n{common[1]}  # a comment\n")
    src = tmp_path / "c.jsonl"
    src.write_text(
        "".join(json.dumps({"keywords": [*k, "everywhere"]}) + "\n" for k in catalog_items)
    )
    out = tmp_path / "model"
    argv = ["train", "--input", str(src), "--topics", "3", "--max-epochs", "1", "--quiet"]
    argv += ["--min-df", "2"]
    assert main([*argv, "--stop-keywords", str(stop), "--max-df", "0.9", "--output", str(out)]) == 0
    model = TopicModel.load(out, device="cpu")
    vocabulary = set(model.vocabulary_.keywords)
    assert not vocabulary & {common[0], common[1], "everywhere"}
    assert model.options.stop_keywords == (common[0].upper(), common[1])
    assert model.options.max_df == 0.9
    assert model.vocabulary_.stats["stopped_keywords"] == 2
    assert model.vocabulary_.stats["too_common_keywords"] == 1
    # without them, the same catalog keeps all three
    assert main([*argv, "--output", str(tmp_path / "plain")]) == 0
    plain = set(TopicModel.load(tmp_path / "plain", device="cpu").vocabulary_.keywords)
    assert {common[0], common[1], "everywhere"} <= plain


def test_training_jobs_carry_stop_keywords_and_max_df(tmp_path):
    catalog = tmp_path / "c.jsonl"
    catalog.write_text('{"keywords": ["a"]}\n')
    request = pb.StartTrainingRequest(
        options=pb.TrainingOptions(max_df=0.5, stop_keywords=["woman director", "3d"])
    )
    spec = spec_from_request(request, catalog)
    assert spec.options.max_df == 0.5 and spec.options.stop_keywords == ("woman director", "3d")
    message = options_message(spec.options)
    assert list(message.stop_keywords) == ["woman director", "3d"] and message.max_df == 0.5
    # an empty list is unset: the base's list (a parent's, or none) stays
    parent = TrainOptions(stop_keywords=("sequel",))
    child = spec_from_request(pb.StartTrainingRequest(), catalog, "v1", parent)
    assert child.options.stop_keywords == ("sequel",)


@pytest.mark.parametrize("bad", ["0", "1.5"])
def test_max_df_out_of_range_is_a_usage_error(tmp_path, bad, capsys):
    argv = ["train", "--max-df", bad, "--output", str(tmp_path / "m"), "--quiet"]
    assert main(argv) == 2
    assert "--max-df must be in (0, 1]" in capsys.readouterr().err
