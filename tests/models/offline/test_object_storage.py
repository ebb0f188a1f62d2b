"""Catalogs and projections on object storage: a real S3-compatible server, through URIs."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.catalog import read_catalog
from topicproj.models.errors import RowCountError, StorageError
from topicproj.models.offline.output import read_projection
from topicproj.models.offline.projection import expand_inputs, project_catalog, read_model_version

from ..factories import saved_small_model, small_synthetic


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> TopicModel:
    return saved_small_model(tmp_path_factory.mktemp("m"))


@pytest.fixture(scope="module")
def items() -> list[list[str]]:
    kws = small_synthetic(n_items=90, seed=7).catalog.keywords
    return [*kws, [], ["not in the vocabulary"]]


def jsonl(items: list[list[str]], first: int = 0, bad_line: int | None = None) -> bytes:
    lines = [
        "{broken" if i == bad_line else json.dumps({"id": f"i{first + i}", "keywords": k})
        for i, k in enumerate(items, start=1)
    ]
    return ("\n".join(lines) + "\n").encode()


def upload(s3, bucket: str, key: str, data: bytes) -> str:
    s3.client().put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def test_catalog_on_s3_projects_like_the_local_files(s3, tmp_path, model, items):
    bucket = s3.new_bucket()
    halves = [items[:50], items[50:]]
    for n, half in enumerate(halves):
        upload(s3, bucket, f"in/part{n}.jsonl", jsonl(half, first=50 * n))
        (tmp_path / f"part{n}.jsonl").write_bytes(jsonl(half, first=50 * n))
    upload(s3, bucket, "in/README.txt", b"not a catalog")
    inputs = expand_inputs(f"s3://{bucket}/in/")
    assert inputs == [f"s3://{bucket}/in/part0.jsonl", f"s3://{bucket}/in/part1.jsonl"]
    assert expand_inputs(f"s3://{bucket}/in/*1.jsonl") == inputs[1:]

    out = f"s3://{bucket}/out/projected.parquet"
    summary = project_catalog(model, inputs, out, batch_size=16, top_k=2, progress=False)
    local = tmp_path / "local.parquet"
    project_catalog(
        model, [tmp_path / "part0.jsonl", tmp_path / "part1.jsonl"], local, top_k=2, progress=False
    )

    c = summary.counts
    assert (c.read, c.skipped, c.projected, c.written) == (len(items), 0, len(items), len(items))
    assert read_projection(out).equals(pq.read_table(local))
    marker = json.loads(
        s3.client().get_object(Bucket=bucket, Key="out/projected.parquet/_SUCCESS")["Body"].read()
    )
    assert marker["rows"]["written"] == len(items) and marker["model_version"] == model.version_
    assert [p["rows"] for p in marker["parts"]] == [50, len(items) - 50]
    assert read_model_version(out) == model.version_
    # no temporaries left behind (keys ending in / are the empty directory objects of pyarrow)
    assert [k for k in s3.keys(bucket, "out/") if not k.endswith("/")] == [
        "out/projected.parquet/_SUCCESS",
        "out/projected.parquet/part-00000.parquet",
        "out/projected.parquet/part-00001.parquet",
    ]
    # training reads a URI as it reads a path
    assert read_catalog(inputs[1]).keywords == items[50:]


def test_an_output_without_its_marker_is_refused_and_a_rerun_replaces_it(s3, model, items):
    bucket = s3.new_bucket()
    source = upload(s3, bucket, "c.jsonl", jsonl(items, bad_line=7))
    out = f"s3://{bucket}/out"
    first = project_catalog(model, [source], out, skip_bad_rows=True, progress=False)
    assert first.counts.skipped == 1 and first.counts.read == len(items)
    assert "row 7" in first.counts.bad_rows[0]
    s3.client().delete_object(Bucket=bucket, Key="out/_SUCCESS")  # as if the run died before it
    with pytest.raises(StorageError, match="no _SUCCESS marker"):
        read_projection(out)
    project_catalog(model, [source], out, skip_bad_rows=True, progress=False)
    assert read_projection(out).num_rows == len(items) - 1


def test_a_part_cut_short_after_the_run_fails_the_reader(s3, model, items, tmp_path):
    bucket = s3.new_bucket()
    source = upload(s3, bucket, "c.jsonl", jsonl(items))
    out = f"s3://{bucket}/out"
    project_catalog(model, [source], out, progress=False)
    body = s3.client().get_object(Bucket=bucket, Key="out/part-00000.parquet")["Body"].read()
    part = pq.read_table(pa.BufferReader(body))
    short = tmp_path / "short.parquet"
    pq.write_table(part.slice(0, 10), short)
    s3.client().put_object(Bucket=bucket, Key="out/part-00000.parquet", Body=short.read_bytes())
    with pytest.raises(RowCountError, match=f"the marker says {len(items)} rows, the file has 10"):
        read_projection(out)
    s3.client().put_object(Bucket=bucket, Key="out/part-00000.parquet", Body=b"PAR1 cut")
    with pytest.raises(RowCountError, match="not whole Parquet"):
        read_projection(out)


def test_missing_bucket_and_wrong_credentials_are_named(s3, model, items, monkeypatch):
    bucket = s3.new_bucket()
    source = upload(s3, bucket, "c.jsonl", jsonl(items))
    with pytest.raises(StorageError, match="no such bucket"):
        project_catalog(model, [source], "s3://no-such-bucket-here/out", progress=False)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(StorageError, match="access denied: check the credentials"):
        project_catalog(model, [source], f"s3://{bucket}/out", progress=False)
    assert s3.keys(bucket) == ["c.jsonl"]


def test_dense_npy_stays_local(s3, model, items):
    with pytest.raises(ValueError, match="one local file"):
        project_catalog(model, ["s3://b/c.jsonl"], "s3://b/out.npy", progress=False)


def test_parquet_catalog_on_s3(s3, model, items):
    bucket = s3.new_bucket()
    buffer = pa.BufferOutputStream()
    pq.write_table(
        pa.table(
            {
                "id": [str(i) for i in range(len(items))],
                "keywords": pa.array(items, pa.list_(pa.string())),
            }
        ),
        buffer,
    )
    source = upload(s3, bucket, "c.parquet", buffer.getvalue().to_pybytes())
    out = f"s3://{bucket}/o"
    project_catalog(model, [source], out, progress=False)
    got = np.stack(read_projection(out)["topics"].to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(got, model.transform(items))
