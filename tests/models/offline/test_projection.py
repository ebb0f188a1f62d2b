"""Offline projection: streamed, equal to the in-process API, atomic, honest about bad rows."""

from __future__ import annotations

import io
import json
from pathlib import Path

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.local import LocalFileSystem

from topicproj.models.core.topic_model import TopicModel
from topicproj.models.errors import CatalogError, OutputExistsError, RowCountError
from topicproj.models.offline.projection import (
    expand_inputs,
    project_catalog,
    read_model_version,
    read_topic_labels,
)

from ..factories import saved_small_model, small_synthetic


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> TopicModel:
    return saved_small_model(tmp_path_factory.mktemp("m"))


@pytest.fixture(scope="module")
def items() -> list[list[str]]:
    kws = small_synthetic(n_items=103, seed=7).catalog.keywords
    return [*kws[:100], [], ["not in the vocabulary"], kws[100]]


def write_jsonl(path, items, bad_line: int | None = None):
    with open(path, "w") as f:
        for i, kws in enumerate(items, start=1):
            f.write(
                "{broken\n"
                if i == bad_line
                else json.dumps({"id": f"i{i}", "keywords": kws}) + "\n"
            )
    return path


def read(path) -> pa.Table:
    return pq.read_table(path)


def test_parquet_output_equals_the_in_process_projection(tmp_path, model, items):
    src = write_jsonl(tmp_path / "c.jsonl", items)
    summary = project_catalog(
        model, [src], tmp_path / "out.parquet", batch_size=10, top_k=3, progress=False
    )
    t = read(tmp_path / "out.parquet")
    expected = model.transform(items)
    assert summary.items == len(items) == t.num_rows and summary.skipped == 0
    np.testing.assert_array_equal(np.stack(t["topics"].to_numpy(zero_copy_only=False)), expected)
    assert t["id"].to_pylist() == [f"i{i}" for i in range(1, len(items) + 1)]
    assert t["active_topics"].to_pylist() == (expected > 0).sum(axis=1).tolist()
    assert t["unknown_keywords"].to_pylist()[101] == 1 and t["known_keywords"].to_pylist()[100] == 0
    for row, top, scores in zip(
        expected, t["top_k_topics"].to_pylist(), t["top_k_scores"].to_pylist(), strict=True
    ):
        want = [int(k) for k in np.argsort(-row, kind="stable")[:3] if row[k] > 0]
        assert top == want and scores == pytest.approx(row[want].tolist())
    assert read_model_version(tmp_path / "out.parquet") == model.version_
    assert read_topic_labels(tmp_path / "out.parquet") == model.labels()
    # streamed: one row group per batch of 10, never the whole catalog at once
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_row_groups == 11


@pytest.mark.parametrize("form", ["list", "pipe"])
def test_parquet_input_lists_or_pipe_strings(tmp_path, model, items, form):
    column = (
        pa.array(items, pa.list_(pa.string()))
        if form == "list"
        else pa.array(["|".join(k) for k in items])
    )
    pq.write_table(
        pa.table({"id": [str(i) for i in range(len(items))], "keywords": column}),
        tmp_path / "c.parquet",
    )
    project_catalog(
        model, [tmp_path / "c.parquet"], tmp_path / "o.parquet", batch_size=16, progress=False
    )
    got = np.stack(read(tmp_path / "o.parquet")["topics"].to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(got, model.transform(items))


def test_npy_output_and_directory_and_glob_inputs(tmp_path, model, items):
    (tmp_path / "in").mkdir()
    write_jsonl(tmp_path / "in" / "a.jsonl", items[:50])
    write_jsonl(tmp_path / "in" / "b.jsonl", items[50:])
    (tmp_path / "in" / "notes.txt").write_text("not a catalog")
    assert [Path(p).name for p in expand_inputs(tmp_path / "in")] == ["a.jsonl", "b.jsonl"]
    assert [Path(p).name for p in expand_inputs(str(tmp_path / "in" / "*.jsonl"))] == [
        "a.jsonl",
        "b.jsonl",
    ]
    project_catalog(
        model, expand_inputs(tmp_path / "in"), tmp_path / "dense.npy", batch_size=7, progress=False
    )
    dense = np.load(tmp_path / "dense.npy", mmap_mode="r")
    assert dense.dtype == np.float32 and dense.shape == (len(items), model.n_topics)
    np.testing.assert_array_equal(dense, model.transform(items))
    # byte for byte what numpy writes for the whole matrix: its own header, not a look-alike
    whole = io.BytesIO()
    np.save(whole, model.transform(items))
    assert (tmp_path / "dense.npy").read_bytes() == whole.getvalue()
    with pytest.raises(CatalogError, match="matches no catalog files"):
        expand_inputs(str(tmp_path / "nothing-*.jsonl"))


def test_bad_row_leaves_no_output_and_keeps_the_old_one(tmp_path, model, items):
    out = tmp_path / "out.parquet"
    out.write_bytes(b"previous complete output")
    src = write_jsonl(tmp_path / "c.jsonl", items, bad_line=57)
    with pytest.raises(CatalogError) as e:
        project_catalog(model, [src], out, batch_size=10, progress=False)
    assert e.value.row == 57 and "c.jsonl" in str(e.value)
    assert out.read_bytes() == b"previous complete output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.jsonl", "out.parquet"]  # no temp
    summary = project_catalog(model, [src], out, batch_size=10, skip_bad_rows=True, progress=False)
    assert summary.skipped == 1 and read(out).num_rows == len(items) - 1


def test_output_must_be_parquet_or_npy(tmp_path, model, items):
    src = write_jsonl(tmp_path / "c.jsonl", items)
    with pytest.raises(CatalogError, match=r"\.parquet or \.npy"):
        project_catalog(model, [src], tmp_path / "out.csv", progress=False)


def test_parquet_bad_rows_are_named_by_file_row_and_skippable(tmp_path, model):
    values = ['["a"]', '["b"]', '["broken', '["c"]', "[1]"]
    pq.write_table(
        pa.table({"id": list("vwxyz"), "keywords": values}),
        tmp_path / "c.parquet",
        row_group_size=2,
    )
    with pytest.raises(CatalogError) as e:
        project_catalog(
            model, [tmp_path / "c.parquet"], tmp_path / "o.parquet", batch_size=2, progress=False
        )
    assert e.value.row == 3  # the file's third row, though it is the first of its batch
    summary = project_catalog(
        model,
        [tmp_path / "c.parquet"],
        tmp_path / "o.parquet",
        batch_size=2,
        skip_bad_rows=True,
        progress=False,
        max_unknown=None,  # keywords a, b, c: about rows, not about this model
    )
    assert summary.skipped == 2 and read(tmp_path / "o.parquet")["id"].to_pylist() == [
        "v",
        "w",
        "y",
    ]


def test_negative_top_k_is_refused(tmp_path, model, items):
    src = write_jsonl(tmp_path / "c.jsonl", items)
    with pytest.raises(ValueError, match="top_k"):
        project_catalog(model, [src], tmp_path / "o.parquet", top_k=-2, progress=False)


@pytest.mark.parametrize(
    "odd",
    [
        {"id": "t", "keywords": [{"id": 1, "name": "alien"}]},  # TMDB's objects
        {"id": "b", "keywords": ["alien", " "]},  # a blank keyword, which the row reader drops
        {"keywords": ["alien"]},  # no id: its line number stands in
        {"id": 61, "keywords": "alien|space"},  # a number for an id, keywords as one string
        {"id": "n", "keywords": None},
    ],
)
def test_jsonl_reads_the_same_through_pyarrow_and_row_by_row(tmp_path, items, monkeypatch, odd):
    """pyarrow's JSON reader takes the blocks it reads exactly; the row reader takes the rest."""
    from topicproj.models.data import arrow_catalog
    from topicproj.models.data.arrow_catalog import iter_catalog_arrow
    from topicproj.models.data.catalog import iter_catalog

    monkeypatch.setattr(arrow_catalog, "JSON_BLOCK_BYTES", 512)  # many blocks, the first ones clean
    lines = [json.dumps({"id": f"i{i + 1}", "keywords": k}) for i, k in enumerate(items)]
    lines[60] = json.dumps(odd)
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines) + "\n")
    rows = list(iter_catalog(path, batch_size=7))
    arrow = list(iter_catalog_arrow(path, batch_size=7))
    assert [i for b in arrow for i in b.ids.to_pylist()] == [i for b in rows for i in b.ids]
    assert [k for b in arrow for k in b.keywords.to_pylist()] == [
        k for b in rows for k in b.keywords
    ]
    assert len(arrow) > len(rows)  # the fast path's blocks came first


class _TruncatingFileSystem(LocalFileSystem):
    """Local files, except that every Parquet file loses its last bytes when closed: a write the
    storage cut short without saying so. Reached through `truncating://`, by fsspec."""

    protocol = "truncating"

    @classmethod
    def _strip_protocol(cls, path):
        return super()._strip_protocol(str(path).removeprefix("truncating://"))

    def _open(self, path, mode="rb", **kwargs):
        f = super()._open(path, mode, **kwargs)
        if "w" in mode and path.endswith(".parquet"):
            close = f.close

            def close_short():
                close()
                with open(path, "r+b") as raw:
                    raw.truncate(max(0, raw.seek(0, 2) - 100))

            f.close = close_short
        return f


def test_a_write_cut_short_fails_the_run(tmp_path, model, items):
    fsspec.register_implementation("truncating", _TruncatingFileSystem, clobber=True)
    src = write_jsonl(tmp_path / "c.jsonl", items)
    out = tmp_path / "out"
    with pytest.raises(RowCountError, match="not whole Parquet"):
        project_catalog(model, [src], f"truncating://{out}", progress=False)
    assert not (out / "_SUCCESS").exists() and not list(out.glob("part-*"))


def test_counts_travel_with_the_output_and_strangers_are_not_overwritten(tmp_path, model, items):
    src = write_jsonl(tmp_path / "c.jsonl", items, bad_line=5)
    out = tmp_path / "out.parquet"
    summary = project_catalog(model, [src], out, skip_bad_rows=True, progress=False)
    rows = json.loads(pq.read_metadata(out).metadata[b"topicproj.rows"])
    assert rows["read"] == len(items) and rows["skipped"] == 1
    assert rows["projected"] == rows["written"] == pq.read_metadata(out).num_rows == len(items) - 1
    assert summary.counts.bad_rows == rows["bad_rows"] and "row 5" in rows["bad_rows"][0]
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(OutputExistsError, match="not a projection's"):
        project_catalog(model, [src], tmp_path / "mine", resume=True, progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
