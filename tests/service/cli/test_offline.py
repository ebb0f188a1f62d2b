"""`topicproj project`: the CLI, the Ray engine, and agreement with the gRPC service."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from topicproj.models.core.topic_model import TopicModel
from topicproj.service.cli.main import main
from topicproj.service.client import TopicClient

REPO = Path(__file__).resolve().parents[3]


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
            "--allow-unknown",  # the one good row's keyword is unknown to the model
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
    # keywords as JSON strings, TMDB's way, one of them broken: both engines skip and count it
    texts = [json.dumps(k) for k in items]
    texts[50] = '["broken'
    src = tmp_path / "c.parquet"
    pq.write_table(
        pa.table({"id": [f"m{i}" for i in range(len(items))], "keywords": texts}),
        src,
        row_group_size=25,
    )
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
        "--skip-bad-rows",
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
    assert distributed.equals(local) and local.num_rows == len(items) - 1
    rows = json.loads((tmp_path / "ray.parquet" / "_SUCCESS").read_text())["rows"]
    assert (rows["read"], rows["skipped"], rows["projected"], rows["written"]) == (
        len(items),
        1,
        len(items) - 1,
        len(items) - 1,
    )
    assert rows["bad_rows"] == ["item m50: keywords: invalid JSON list"]


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

    from topicproj.models.data.storage import locate
    from topicproj.models.offline.output import read_projection
    from topicproj.models.offline.projection import project_catalog
    from topicproj.models.offline.ray_engine import check_shared, project_with_ray

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


def test_object_storage_errors_are_one_line_without_a_traceback(
    tmp_path, model_dir, catalog_items, s3
):
    src = write_parquet(tmp_path / "c.parquet", catalog_items[:20])
    bucket = s3.new_bucket()
    base = [sys.executable, "-m", "topicproj.service.cli", "project", "--model", str(model_dir)]
    cases = {
        "no such bucket": (s3.environment(), f"s3://no-such-bucket-{bucket}/out"),
        "access denied: check the credentials": (
            s3.environment(secret_key="wrong"),
            f"s3://{bucket}/out",
        ),
    }
    for expected, (env, output) in cases.items():
        for engine in ("local", "ray"):
            done = subprocess.run(
                [*base, "--input", str(src), "--output", output, "--engine", engine, "--quiet"],
                env={k: v for k, v in {**os.environ, **env}.items() if k != "RAY_ADDRESS"},
                cwd=REPO,
                capture_output=True,
                text=True,
                timeout=300,
            )
            lines = [line for line in done.stderr.splitlines() if line.startswith("topicproj")]
            assert done.returncode == 2, (engine, done.stderr[-2000:])
            assert "Traceback" not in done.stderr, (engine, done.stderr[-2000:])
            assert len(lines) == 1 and expected in lines[0], (engine, done.stderr[-2000:])
    assert s3.keys(bucket) == []


def test_an_interrupted_run_resumes_with_only_the_missing_files(tmp_path, model_dir, catalog_items):
    """A real `topicproj project` killed midway; `--resume` keeps the parts it finished."""
    (tmp_path / "in").mkdir()
    files = 16
    per_file = 1000
    for n in range(files):
        rows = [catalog_items[(n * per_file + i) % len(catalog_items)] for i in range(per_file)]
        with open(tmp_path / "in" / f"c{n:02d}.jsonl", "w") as f:
            for i, kws in enumerate(rows):
                f.write(json.dumps({"id": f"f{n}-{i}", "keywords": kws}) + "\n")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "topicproj.service.cli",
        "project",
        "--model",
        str(model_dir),
        "--input",
        str(tmp_path / "in"),
        "--output",
        str(out),
        "--batch-size",
        "25",
        "--resume",
    ]
    run = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(list(out.glob("part-*.parquet"))) < 2:
        assert run.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert not (out / "_SUCCESS").exists()
    finished = {p.name: p.stat().st_ino for p in out.glob("part-*.parquet")}
    assert 2 <= len(finished) < files

    done = subprocess.run([*command, "--quiet"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    kept = {p.name: p.stat().st_ino for p in out.glob("part-*.parquet") if p.name in finished}
    assert kept == finished  # the finished parts were not written again
    assert len(list(out.glob("part-*.parquet"))) == files
    assert not (out / "_temporary").exists()

    from topicproj.models.offline.output import read_projection

    marker = json.loads((out / "_SUCCESS").read_text())
    assert marker["rows"]["read"] == marker["rows"]["written"] == files * per_file
    whole = tmp_path / "whole.parquet"
    assert main(["project", *command[4:10], "--output", str(whole), "--quiet"]) == 0
    assert read_projection(str(out)).equals(pq.read_table(whole))
