"""Every input format through every engine, on a local disk and on S3: the same output.

One small catalog is written as CSV, zipped CSV, TMDB's CSV (keywords as JSON objects), JSONL,
a JSON array, Parquet, and a directory of two JSONL files; each is projected by the local
engine and by Ray, from a local path and from the S3 server, with a column kept through. Every
output must hold exactly the reference rows: the model's own projection of the items. One Ray
instance serves the whole matrix (its start-up is the slow part).
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.columns import Columns
from topicproj.models.data.storage import locate
from topicproj.models.offline.projection import expand_inputs, project_catalog

from ...objectstore import S3Server

N_ITEMS = 24
COLUMNS = Columns(keep=("title",))


def _items(catalog_items: list[list[str]]) -> list[tuple[str, list[str], str]]:
    return [(f"m{i:02d}", catalog_items[i], f"Title, {i}") for i in range(N_ITEMS)]


def _csv(rows, cell) -> bytes:  # type: ignore[no-untyped-def]
    out = io.StringIO()
    out.write("id,keywords,title\n")
    for item_id, kws, title in rows:
        quoted = cell(kws).replace('"', '""')
        out.write(f'{item_id},"{quoted}","{title}"\n')
    return out.getvalue().encode()


def _jsonl(rows) -> bytes:  # type: ignore[no-untyped-def]
    return "".join(
        json.dumps({"id": i, "keywords": k, "title": t}) + "\n" for i, k, t in rows
    ).encode()


def catalog_files(rows) -> dict[str, dict[str, bytes]]:  # type: ignore[no-untyped-def]
    """Format -> {relative file name: bytes}; the input spec is the single file or the folder."""
    csv = _csv(rows, "|".join)
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("catalog.csv", csv)
    tmdb = _csv(rows, lambda k: json.dumps([{"id": n, "name": w} for n, w in enumerate(k)]))
    parquet = pa.BufferOutputStream()
    pq.write_table(
        pa.table(
            {
                "id": [r[0] for r in rows],
                "keywords": pa.array([r[1] for r in rows], pa.list_(pa.string())),
                "title": [r[2] for r in rows],
            }
        ),
        parquet,
        row_group_size=7,
    )
    half = len(rows) // 2
    return {
        "csv": {"c.csv": csv},
        "csv.zip": {"c.csv.zip": zipped.getvalue()},
        "tmdb": {"tmdb.csv": tmdb},
        "jsonl": {"c.jsonl": _jsonl(rows)},
        "json": {
            "c.json": json.dumps(
                [{"id": i, "keywords": k, "title": t} for i, k, t in rows]
            ).encode()
        },
        "parquet": {"c.parquet": parquet.getvalue().to_pybytes()},
        "directory": {"dir/a.jsonl": _jsonl(rows[:half]), "dir/b.jsonl": _jsonl(rows[half:])},
    }


FORMATS = ("csv", "csv.zip", "tmdb", "jsonl", "json", "parquet", "directory")


@pytest.fixture(scope="module")
def s3_env(s3_server: S3Server) -> Iterator[S3Server]:
    """The S3 variables for the whole module: Ray's workers inherit them when Ray starts."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in s3_server.environment().items():
            mp.setenv(name, value)
        mp.delenv("RAY_ADDRESS", raising=False)
        yield s3_server


@pytest.fixture(scope="module")
def ray_instance(s3_env: S3Server) -> Iterator[None]:
    pytest.importorskip("ray.data")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def places(tmp_path_factory, s3_env, catalog_items) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    """Storage -> format -> the input spec, every format written to both."""
    files = catalog_files(_items(catalog_items))
    local = tmp_path_factory.mktemp("formats")
    bucket = s3_env.new_bucket()
    client = s3_env.client()
    out: dict[str, dict[str, str]] = {"local": {}, "s3": {}}
    for fmt, contents in files.items():
        for name, data in contents.items():
            path = local / fmt / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            client.put_object(Bucket=bucket, Key=f"{fmt}/{name}", Body=data)
        single = next(iter(contents)) if len(contents) == 1 else "dir/"
        out["local"][fmt] = str(local / fmt / single)
        out["s3"][fmt] = f"s3://{bucket}/{fmt}/{single}"
    return out


@pytest.fixture(scope="module")
def reference(model_dir: Path, catalog_items) -> pa.Table:  # type: ignore[no-untyped-def]
    rows = _items(catalog_items)
    model = TopicModel.load(model_dir, device="cpu")
    return pa.table(
        {
            "id": [r[0] for r in rows],
            "title": [r[2] for r in rows],
            "topics": list(model.transform([r[1] for r in rows])),
        }
    )


def _s3_output(spec: str, engine: str, fmt: str) -> str:
    return f"s3://{spec.split('/')[2]}/out/{engine}/{fmt}"


def _check(output: str, reference: pa.Table) -> None:
    loc = locate(output)
    table = pq.read_table(loc.path, filesystem=loc.filesystem).sort_by("id")
    assert table.column_names[:3] == ["id", "title", "topics"]
    assert table["id"].to_pylist() == reference["id"].to_pylist()
    assert table["title"].to_pylist() == reference["title"].to_pylist()
    got = np.stack(table["topics"].to_numpy(zero_copy_only=False))
    np.testing.assert_allclose(got, np.stack(reference["topics"].to_pylist()), atol=1e-6)


@pytest.mark.parametrize("storage", ["local", "s3"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_local_engine(fmt, storage, places, reference, model_dir, tmp_path, s3_env):  # type: ignore[no-untyped-def]
    spec = places[storage][fmt]
    output = str(tmp_path / "o.parquet") if storage == "local" else _s3_output(spec, "local", fmt)
    model = TopicModel.load(model_dir, device="cpu")
    format = "tmdb" if fmt == "tmdb" else None
    project_catalog(
        model, expand_inputs(spec), output, format=format, progress=False, columns=COLUMNS
    )
    _check(output, reference)


@pytest.fixture(scope="module")
def tally(ray_instance):  # type: ignore[no-untyped-def]
    import ray

    from topicproj.models.offline.ray_engine import RowTally

    return ray.remote(num_cpus=0)(RowTally).remote()


@pytest.mark.parametrize("storage", ["local", "s3"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_ray_engine_reads_every_format(fmt, storage, places, reference, model_dir, tally):  # type: ignore[no-untyped-def]
    """The Ray engine's own reading (Ray's readers, or the driver's) and its actors' code, run
    here on the rows Ray read: an actor pool per case would cost the matrix minutes."""
    from topicproj.models.offline.ray_engine import ProjectBatches, _dataset

    spec = places[storage][fmt]
    format = "tmdb" if fmt == "tmdb" else None
    dataset = _dataset(expand_inputs(spec), format, COLUMNS, skip_bad_rows=False)
    import ray

    table = pa.concat_tables(ray.get(dataset.to_arrow_refs()), promote_options="default")
    projected = ProjectBatches(str(model_dir), "cpu", 0, False, tally, COLUMNS)(table)
    out = places["local"]["csv"].rsplit("/", 2)[0] + f"/ray-{fmt}-{storage}.parquet"
    pq.write_table(projected, out)
    _check(out, reference)


@pytest.mark.parametrize("storage", ["local", "s3"])
def test_ray_engine_end_to_end_on_jsonl(
    storage, places, reference, model_dir, tmp_path, ray_instance
):  # type: ignore[no-untyped-def]
    """JSONL, the pair Ray once refused ("`filesystem` is not supported when `lines=True`"),
    through the whole engine: actors, parts, marker."""
    from topicproj.models.offline.ray_engine import project_with_ray

    spec = places[storage]["jsonl"]
    output = str(tmp_path / "ray") if storage == "local" else _s3_output(spec, "ray", "jsonl")
    summary = project_with_ray(model_dir, expand_inputs(spec), output, actors=1, columns=COLUMNS)
    assert summary.counts.projected == N_ITEMS and summary.keywords.keywords > 0
    _check(output, reference)
