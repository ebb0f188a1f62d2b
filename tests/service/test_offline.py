"""`topicproj project`: the CLI, the Ray engine, and agreement with the gRPC service."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from models.core.topic_model import TopicModel
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


def upload_parquet(s3, bucket: str, key: str, items, first: int = 0) -> str:
    buffer = pa.BufferOutputStream()
    ids = [f"m{first + i:04d}" for i in range(len(items))]
    pq.write_table(
        pa.table({"id": ids, "keywords": pa.array(items, pa.list_(pa.string()))}),
        buffer,
        row_group_size=25,
    )
    s3.client().put_object(Bucket=bucket, Key=key, Body=buffer.getvalue().to_pybytes())
    return f"s3://{bucket}/{key}"


def test_ray_on_a_two_node_cluster_writes_to_s3_what_the_local_engine_writes(
    tmp_path, model_dir, catalog_items, s3, monkeypatch
):
    """Two Ray nodes on this machine, actors on both, output on the S3 server, rows exact."""
    pytest.importorskip("ray.data")
    import ray
    from ray.cluster_utils import Cluster

    from models.data.storage import locate
    from models.offline.output import read_projection
    from models.offline.projection import project_catalog
    from models.offline.ray_engine import check_shared, project_with_ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    bucket = s3.new_bucket()
    items = [*catalog_items[:150], [], ["not in the vocabulary"]]
    inputs = [
        upload_parquet(s3, bucket, "in/a.parquet", items[:76]),
        upload_parquet(s3, bucket, "in/b.parquet", items[76:], first=76),
    ]
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    try:
        cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
        out = f"s3://{bucket}/projected"
        summary = project_with_ray(model_dir, inputs, out, batch_size=16, top_k=2, actors=2)
        assert len(summary.details["actor_nodes"]) == 2  # an actor ran on each node
        c = summary.counts
        assert (c.read, c.skipped, c.projected, c.written) == (
            len(items),
            0,
            len(items),
            len(items),
        )
        marker = json.loads(
            s3.client().get_object(Bucket=bucket, Key="projected/_SUCCESS")["Body"].read()
        )
        assert marker["rows"] == c.to_dict() and marker["nodes"] == 2

        local = tmp_path / "local.parquet"
        model = TopicModel.load(model_dir, device="cpu")
        project_catalog(model, inputs, local, top_k=2, progress=False)
        assert read_projection(out).sort_by("id").equals(pq.read_table(local))

        # A local output on two nodes is taken only once every node is shown to see it: here
        # both nodes are this machine, and the probe proves it.
        assert len(check_shared([str(local)], locate(str(tmp_path / "shared")))) == 2
    finally:
        ray.shutdown()
        cluster.shutdown()
