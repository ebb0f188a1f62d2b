"""`topicproj project`: the CLI, the Ray engine, and agreement with the gRPC service."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from service.cli import main
from service.client import TopicClient


def write_parquet(path, items):
    ids = [f"m{i}" for i in range(len(items))]
    pq.write_table(
        pa.table({"id": ids, "keywords": pa.array(items, pa.list_(pa.string()))}),
        path,
        row_group_size=25,
    )
    return path


def dense(path) -> np.ndarray:
    return np.stack(pq.read_table(path).sort_by("id")["topics"].to_numpy(zero_copy_only=False))


def test_offline_equals_the_grpc_service(tmp_path, server, model_dir, catalog_items, capsys):
    items = catalog_items[:60]
    src = write_parquet(tmp_path / "c.parquet", items)
    rc = main(
        [
            "project",
            "--model",
            str(model_dir),
            "--input",
            str(src),
            "--output",
            str(tmp_path / "o.parquet"),
            "--batch-size",
            "16",
        ]
    )
    assert rc == 0
    assert "projected 60 items from 1 file(s)" in capsys.readouterr().err
    with TopicClient(server.address) as client:
        served = client.project(items)
    offline = pq.read_table(tmp_path / "o.parquet")
    assert offline["id"].to_pylist() == [f"m{i}" for i in range(60)]
    np.testing.assert_allclose(
        np.stack(offline["topics"].to_numpy(zero_copy_only=False)),
        served.topics,
        rtol=1e-6,
        atol=1e-7,
    )


def test_cli_errors_are_one_line(tmp_path, model_dir, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": 1, "keywords": ["a"]}) + "\n{nope\n")
    out = tmp_path / "o.parquet"
    assert (
        main(["project", "--model", str(model_dir), "--input", str(bad), "--output", str(out)]) == 2
    )
    err = capsys.readouterr().err
    assert "bad.jsonl, row 2" in err and err.count("\n") == 1 and not out.exists()
    rc = main(
        [
            "project",
            "--model",
            str(model_dir),
            "--input",
            str(bad),
            "--output",
            str(out),
            "--skip-bad-rows",
            "--quiet",
        ]
    )
    assert rc == 0 and pq.read_table(out).num_rows == 1
    assert (
        main(["project", "--model", str(tmp_path), "--input", str(bad), "--output", str(out)]) == 2
    )
    assert "manifest.json is missing" in capsys.readouterr().err


def test_ray_engine_equals_local_engine_row_for_row(
    tmp_path, model_dir, catalog_items, monkeypatch
):
    pytest.importorskip("ray.data")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    items = [*catalog_items[:120], [], ["not in the vocabulary"]]
    src = write_parquet(tmp_path / "c.parquet", items)
    common = [
        "--model",
        str(model_dir),
        "--input",
        str(src),
        "--top-k",
        "2",
        "--quiet",
        "--batch-size",
        "32",
    ]
    assert main(["project", *common, "--output", str(tmp_path / "local.parquet")]) == 0
    assert (
        main(["project", *common, "--engine", "ray", "--output", str(tmp_path / "ray.parquet")])
        == 0
    )
    local = pq.read_table(tmp_path / "local.parquet").sort_by("id")
    distributed = pq.read_table(tmp_path / "ray.parquet").sort_by("id")  # a directory of parts
    assert (tmp_path / "ray.parquet").is_dir()
    assert distributed.schema.equals(local.schema, check_metadata=True)  # model version included
    assert distributed.equals(local)
