"""Reading a catalog that cannot fail silently: named columns, separators, .json, bad bytes,
and a projection that refuses to write rows of zeros when it knows almost no keyword."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.arrow_catalog import iter_catalog_arrow
from topicproj.models.data.catalog import read_catalog
from topicproj.models.data.columns import Columns, separator_hint
from topicproj.models.errors import CatalogError, UnknownKeywordsError
from topicproj.models.offline.projection import project_catalog

from ..factories import saved_small_model, small_synthetic


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> TopicModel:
    return saved_small_model(tmp_path_factory.mktemp("m"))


@pytest.fixture(scope="module")
def items() -> list[list[str]]:
    return [k for k in small_synthetic(n_items=40, seed=3).catalog.keywords if len(k) >= 2]


def test_comma_separated_cells_fail_the_projection_and_say_which_separator(tmp_path, model, items):
    src = tmp_path / "c.csv"
    rows = ["id,keywords"] + [f'm{i},"{", ".join(k)}"' for i, k in enumerate(items)]
    src.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "o.parquet"
    with pytest.raises(UnknownKeywordsError) as info:
        project_catalog(model, [src], out, progress=False)
    e = info.value
    assert e.unknown == e.total == len(items)  # each cell one unknown "keyword"
    assert e.separator == ","
    assert "unknown to the model" in str(e) and "separated by ','" in str(e)
    assert not out.exists() and list(tmp_path.iterdir()) == [src]  # nothing written
    # read as the lists they are, every keyword is known
    summary = project_catalog(model, [src], out, progress=False, columns=Columns(separator=","))
    assert summary.keywords.keywords == sum(map(len, items))
    assert summary.keywords.share() < 0.05  # the rare ones below the model's min_df
    # and a run may be told to go on regardless
    project_catalog(model, [src], out, progress=False, max_unknown=None)
    assert pq.read_table(out)["known_keywords"].to_pylist() == [0] * len(items)


def test_separator_hint_needs_most_unknown_keywords_to_hold_it():
    assert separator_hint(["a; b", "c; d", "e"], "|") == ";"
    assert separator_hint(["a, b", "c", "d"], "|") is None
    assert separator_hint(["a|b", "c|d"], "|") is None  # already the separator in use


def test_named_columns_and_kept_columns_pass_through(tmp_path, model, items):
    src = tmp_path / "c.csv"
    rows = ["movie,tags,title,year"] + [
        f'x{i},"{";".join(k)}",Title {i},{1990 + i}' for i, k in enumerate(items)
    ]
    src.write_text("\n".join(rows) + "\n", encoding="utf-8")
    columns = Columns(keywords="tags", id="movie", separator=";", keep=("title", "year"))
    out = tmp_path / "o.parquet"
    project_catalog(model, [src], out, progress=False, columns=columns)
    t = pq.read_table(out)
    assert t.column_names[:3] == ["id", "title", "year"]
    assert t["id"].to_pylist() == [f"x{i}" for i in range(len(items))]
    assert t["year"].to_pylist() == [str(1990 + i) for i in range(len(items))]
    expected = model.transform(items)
    np.testing.assert_allclose(np.stack(t["topics"].to_numpy(zero_copy_only=False)), expected)
    # a kept column the catalog lacks, or a named id column it lacks, is an error naming it
    for bad in (Columns(keywords="tags", keep=("genre",)), Columns(keywords="tags", id="uid")):
        with pytest.raises(CatalogError, match=r"no '(genre|uid)' column"):
            read_catalog(src, columns=bad)
    with pytest.raises(CatalogError, match=r"no 'keywords' column.*--keywords-column"):
        read_catalog(src)


def test_json_array_reads_like_jsonl(tmp_path, items):
    records = [{"id": f"m{i}", "keywords": k, "genres": ["g"]} for i, k in enumerate(items)]
    (tmp_path / "c.json").write_text(json.dumps(records), encoding="utf-8")
    (tmp_path / "c.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in records), encoding="utf-8"
    )
    a, b = read_catalog(tmp_path / "c.json"), read_catalog(tmp_path / "c.jsonl")
    assert (a.ids, a.keywords, a.genres) == (b.ids, b.keywords, b.genres)
    (tmp_path / "o.json").write_text('{"id": 1, "keywords": []}', encoding="utf-8")
    with pytest.raises(CatalogError, match=r"JSON array of objects.*JSONL"):
        read_catalog(tmp_path / "o.json")


def test_non_utf8_jsonl_names_file_row_and_byte_and_skips_the_row(tmp_path):
    src = tmp_path / "c.jsonl"
    lines = [json.dumps({"id": f"m{i}", "keywords": ["café", "alien"]}).encode() for i in range(5)]
    lines[2] = '{"id": "m2", "keywords": ["caf\u00e9"]}'.encode("latin-1")  # é as one byte 0xe9
    src.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(CatalogError) as info:
        read_catalog(src)
    assert info.value.path == str(src) and info.value.row == 3
    assert "not UTF-8" in str(info.value) and "0xe9" in str(info.value)
    # the Arrow path (projection) falls back to the row reader and says the same
    with pytest.raises(CatalogError, match=r"row 3: not UTF-8"):
        list(iter_catalog_arrow(src))
    catalog = read_catalog(src, skip_bad_rows=True)
    assert catalog.ids == ["m0", "m1", "m3", "m4"] and catalog.stats.skipped == 1
    batches = list(iter_catalog_arrow(src, skip_bad_rows=True))
    assert sum(len(b) for b in batches) == 4


def test_non_utf8_csv_is_one_bad_row_not_a_failed_file(tmp_path):
    src = tmp_path / "c.csv"
    body = b"id,keywords\nm0,alien|space\nm1,caf\xe9|x\nm2,robot\n"
    src.write_bytes(body)
    with pytest.raises(CatalogError) as info:
        read_catalog(src)
    assert info.value.row == 2 and "keywords: not UTF-8" in str(info.value)
    catalog = read_catalog(src, skip_bad_rows=True)
    assert catalog.ids == ["m0", "m2"] and catalog.stats.skipped == 1


def test_tmdb_objects_in_a_jsonl_list_read_as_their_names(tmp_path):
    src = tmp_path / "c.parquet"
    kws = [[{"id": 1, "name": "alien"}, {"id": 2, "name": "space"}], [], None]
    pq.write_table(pa.table({"id": ["a", "b", "c"], "keywords": kws}), src)
    (batch,) = list(iter_catalog_arrow(src))
    assert batch.keywords.to_pylist() == [["alien", "space"], [], []]
