"""Catalog readers: every supported layout, format detection, bad input and streaming."""

from __future__ import annotations

import csv
import gzip
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from topicproj.models.data.catalog import ReadStats, detect_format, iter_catalog, read_catalog
from topicproj.models.errors import CatalogError

TMDB_ZIP = Path(__file__).resolve().parents[3].parent / "shared/data/tmdb_5000_movies.csv.zip"


# -- factories ---------------------------------------------------------------------------------


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """One line per record; a `str` record is written verbatim (for broken lines)."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def write_csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def tmdb_terms(*names: str) -> str:
    """A TMDB cell: a JSON list of {"id", "name"} objects."""
    return json.dumps([{"id": 100 + i, "name": n} for i, n in enumerate(names)])


def zip_one(src: Path, dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.write(src, arcname=src.name)
    return dest


def write_tmdb_csv(path: Path) -> Path:
    return write_csv(
        path,
        ["budget", "genres", "id", "keywords", "title"],
        [
            [
                100,
                tmdb_terms("Science Fiction", "Action"),
                19995,
                tmdb_terms("space", "alien"),
                "A",
            ],
            [200, tmdb_terms("Drama"), 285, "[]", "B, with a comma"],
            [300, "[]", 206647, tmdb_terms("spy"), "C"],
        ],
    )


def ten_rows(tmp_path: Path, fmt: str) -> Path:
    ids = [f"m{i}" for i in range(10)]
    kws = [[f"k{i}", "shared"] for i in range(10)]
    if fmt == "csv":
        rows = [[i, "|".join(k)] for i, k in zip(ids, kws, strict=True)]
        return write_csv(tmp_path / "ten.csv", ["id", "keywords"], rows)
    if fmt == "jsonl":
        records = [{"id": i, "keywords": k} for i, k in zip(ids, kws, strict=True)]
        return write_jsonl(tmp_path / "ten.jsonl", records)
    path = tmp_path / "ten.parquet"
    pq.write_table(pa.table({"id": ids, "keywords": pa.array(kws, pa.list_(pa.string()))}), path)
    return path


# -- the layouts -------------------------------------------------------------------------------


def test_jsonl_with_ids_keywords_and_genres(tmp_path):
    path = write_jsonl(
        tmp_path / "items.jsonl",
        [
            {"id": "a1", "keywords": ["space", "alien"], "genres": ["Sci-Fi"]},
            {"id": "a2", "keywords": ["love"], "genres": ["Drama", "Romance"]},
        ],
    )
    catalog = read_catalog(path)
    assert catalog.ids == ["a1", "a2"]
    assert catalog.keywords == [["space", "alien"], ["love"]]
    assert catalog.genres == [["Sci-Fi"], ["Drama", "Romance"]]
    assert catalog.source == str(path)
    assert (catalog.stats.rows, catalog.stats.skipped, catalog.stats.empty) == (2, 0, 0)


def test_csv_with_pipe_separated_keywords(tmp_path):
    path = write_csv(
        tmp_path / "items.csv",
        ["id", "keywords", "genres"],
        [["x1", "a|b|c", "Drama"], ["x2", " spaced out | d ||", "Comedy|Horror"]],
    )
    catalog = read_catalog(path)
    assert catalog.ids == ["x1", "x2"]
    assert catalog.keywords == [["a", "b", "c"], ["spaced out", "d"]]
    assert catalog.genres == [["Drama"], ["Comedy", "Horror"]]


def test_csv_with_json_list_keywords(tmp_path):
    path = write_csv(
        tmp_path / "items.csv",
        ["id", "keywords"],
        [["x1", json.dumps(["a, with comma", "b"])], ["x2", json.dumps(["c|not split"])]],
    )
    catalog = read_catalog(path)
    assert catalog.keywords == [["a, with comma", "b"], ["c|not split"]]
    assert catalog.genres is None


def test_csv_without_id_column_numbers_rows_from_one(tmp_path):
    path = write_csv(tmp_path / "items.csv", ["keywords"], [["a"], ["b"], ["c"]])
    assert read_catalog(path).ids == ["1", "2", "3"]


@pytest.mark.parametrize("zipped", [False, True], ids=["plain", "zip"])
@pytest.mark.parametrize("format", [None, "tmdb"])
def test_tmdb_csv_with_name_objects(tmp_path, zipped, format):
    path = write_tmdb_csv(tmp_path / "movies.csv")
    if zipped:
        path = zip_one(path, tmp_path / "movies.csv.zip")
    catalog = read_catalog(path, format=format)
    assert catalog.ids == ["19995", "285", "206647"]
    assert catalog.keywords == [["space", "alien"], [], ["spy"]]
    assert catalog.genres == [["Science Fiction", "Action"], ["Drama"], []]
    assert catalog.stats.rows == 3
    assert catalog.stats.empty == 1


def test_zip_holding_two_files_is_rejected(tmp_path):
    a = write_tmdb_csv(tmp_path / "a.csv")
    b = write_tmdb_csv(tmp_path / "b.csv")
    dest = tmp_path / "both.csv.zip"
    with zipfile.ZipFile(dest, "w") as zf:
        zf.write(a, arcname="a.csv")
        zf.write(b, arcname="b.csv")
    with pytest.raises(CatalogError, match="exactly one file, found 2"):
        read_catalog(dest)


def test_gzip_csv(tmp_path):
    plain = write_csv(tmp_path / "p.csv", ["id", "keywords"], [["g1", "a|b"], ["g2", "c"]])
    path = tmp_path / "items.csv.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    catalog = read_catalog(path)
    assert catalog.ids == ["g1", "g2"]
    assert catalog.keywords == [["a", "b"], ["c"]]


def test_parquet_with_list_of_strings_column(tmp_path):
    path = tmp_path / "items.parquet"
    table = pa.table(
        {
            "id": ["p1", "p2", "p3"],
            "keywords": pa.array([["a", "b"], [], None], pa.list_(pa.string())),
            "genres": pa.array([["G"], ["H", "I"], []], pa.list_(pa.string())),
        }
    )
    pq.write_table(table, path)
    catalog = read_catalog(path)
    assert catalog.ids == ["p1", "p2", "p3"]
    assert catalog.keywords == [["a", "b"], [], []]
    assert catalog.genres == [["G"], ["H", "I"], []]
    assert catalog.stats.empty == 2


def test_parquet_with_pipe_separated_string_column(tmp_path):
    path = tmp_path / "items.pq"
    pq.write_table(pa.table({"id": [7, 8], "keywords": ["a|b", "c"]}), path)
    catalog = read_catalog(path)
    assert catalog.ids == ["7", "8"]
    assert catalog.keywords == [["a", "b"], ["c"]]
    assert catalog.genres is None


# -- format detection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", "csv"),
        ("a.CSV", "csv"),
        ("a.tsv", "csv"),
        ("a.csv.gz", "csv"),
        ("tmdb_5000_movies.csv.zip", "csv"),
        ("a.jsonl", "jsonl"),
        ("a.ndjson", "jsonl"),
        ("a.jsonl.gz", "jsonl"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
    ],
)
def test_detect_format_from_extension(name, expected):
    assert detect_format(name) == expected


@pytest.mark.parametrize("name", ["items.txt", "items", "items.zip"])
def test_unknown_extension_raises_a_clear_error(tmp_path, name):
    path = tmp_path / name
    path.write_text('{"keywords": ["a"]}\n', encoding="utf-8")
    with pytest.raises(CatalogError, match="cannot tell the format") as info:
        read_catalog(path)
    assert info.value.path == str(path)
    for fmt in ("csv", "tmdb", "jsonl", "parquet"):
        assert fmt in str(info.value)


def test_format_override_beats_the_extension(tmp_path):
    text = json.dumps({"id": "o1", "keywords": ["a"]}) + "\n"
    (tmp_path / "items.txt").write_text(text, encoding="utf-8")
    (tmp_path / "items.csv").write_text(text, encoding="utf-8")
    assert read_catalog(tmp_path / "items.txt", format="jsonl").keywords == [["a"]]
    assert read_catalog(tmp_path / "items.csv", format="jsonl").ids == ["o1"]
    with pytest.raises(CatalogError, match="keywords"):
        read_catalog(tmp_path / "items.csv")  # as CSV its header has no keywords column


def test_unknown_format_raises_a_clear_error(tmp_path):
    path = write_jsonl(tmp_path / "items.jsonl", [{"keywords": ["a"]}])
    with pytest.raises(CatalogError, match=r"unknown format 'nonsense'; expected one of csv"):
        read_catalog(path, format="nonsense")


def test_missing_file_raises(tmp_path):
    with pytest.raises(CatalogError, match="no such file"):
        read_catalog(tmp_path / "absent.csv")


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["items.csv", "items.jsonl", "items.parquet", "items.csv.zip"])
def test_empty_file_raises(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"")
    with pytest.raises(CatalogError, match="empty") as info:
        read_catalog(path)
    assert info.value.path == str(path)


def broken_json_csv(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "broken.csv",
        ["id", "keywords"],
        [["b1", '["a", "b"]'], ["b2", "[bad json"], ["b3", '["c"]'], ["b4", '["d"]']],
    )


def test_broken_json_in_a_csv_row_names_file_and_row(tmp_path):
    path = broken_json_csv(tmp_path)
    with pytest.raises(CatalogError) as info:
        read_catalog(path)
    error = info.value
    assert error.row == 2
    assert error.path == str(path)
    assert str(path) in str(error)
    assert "row 2" in str(error)
    assert "invalid JSON" in error.reason


def test_skip_bad_rows_skips_and_counts_broken_csv_rows(tmp_path):
    catalog = read_catalog(broken_json_csv(tmp_path), skip_bad_rows=True)
    assert catalog.ids == ["b1", "b3", "b4"]
    assert catalog.keywords == [["a", "b"], ["c"], ["d"]]
    assert catalog.stats.skipped == 1
    assert catalog.stats.rows == 3
    assert len(catalog.stats.errors) == 1
    assert "row 2" in catalog.stats.errors[0]


@pytest.mark.parametrize("cell", ["[1, 2]", '[{"id": 1}]', "[null]"])
def test_keyword_lists_with_non_string_entries_are_bad_rows(tmp_path, cell):
    path = write_csv(tmp_path / "shape.csv", ["id", "keywords"], [["s1", "a"], ["s2", cell]])
    with pytest.raises(CatalogError, match="each entry must be a string") as info:
        read_catalog(path)
    assert info.value.row == 2


def test_ragged_csv_row_is_a_bad_row(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("id,keywords\nr1,a\nr2,b,c,d\nr3,e\n", encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        read_catalog(path)
    assert info.value.row == 2
    catalog = read_catalog(path, skip_bad_rows=True)
    assert catalog.ids == ["r1", "r3"]
    assert catalog.stats.skipped == 1


def test_jsonl_broken_line_names_its_line_number(tmp_path):
    path = write_jsonl(
        tmp_path / "broken.jsonl",
        [{"id": "j1", "keywords": ["a"]}, "", '{"id": "j3", "keywords": ["b"', {"keywords": []}],
    )
    with pytest.raises(CatalogError, match="invalid JSON") as info:
        read_catalog(path)
    assert info.value.row == 3  # a physical line number: the blank line 2 counts
    assert "row 3" in str(info.value)
    assert str(path) in str(info.value)


def test_jsonl_record_without_keywords_is_a_bad_row(tmp_path):
    path = write_jsonl(tmp_path / "nokw.jsonl", [{"id": "j1", "keywords": ["a"]}, {"id": "j2"}])
    with pytest.raises(CatalogError, match="missing 'keywords'") as info:
        read_catalog(path)
    assert info.value.row == 2


def test_jsonl_line_that_is_not_an_object_is_a_bad_row(tmp_path):
    path = write_jsonl(tmp_path / "list.jsonl", [["a", "b"]])
    with pytest.raises(CatalogError, match="expected a JSON object") as info:
        read_catalog(path)
    assert info.value.row == 1


def test_skip_bad_rows_skips_and_counts_bad_jsonl_lines(tmp_path):
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"id": "j1", "keywords": ["a"]},
            "{not json",
            {"id": "j3"},
            {"id": "j4", "keywords": ["b", "c"]},
            "[1]",
        ],
    )
    catalog = read_catalog(path, skip_bad_rows=True)
    assert catalog.ids == ["j1", "j4"]
    assert catalog.keywords == [["a"], ["b", "c"]]
    assert catalog.stats.skipped == 3
    assert catalog.stats.rows == 2
    assert [re.search(r"row (\d+):", e)[1] for e in catalog.stats.errors] == ["2", "3", "5"]


@pytest.mark.parametrize("skip_bad_rows", [False, True])
def test_csv_without_keywords_column_raises(tmp_path, skip_bad_rows):
    path = write_csv(tmp_path / "tags.csv", ["id", "tags"], [["t1", "a|b"]])
    with pytest.raises(CatalogError, match="no 'keywords' column") as info:
        read_catalog(path, skip_bad_rows=skip_bad_rows)
    assert info.value.path == str(path)


def test_parquet_without_keywords_column_raises(tmp_path):
    path = tmp_path / "tags.parquet"
    pq.write_table(pa.table({"id": ["t1"], "tags": ["a"]}), path)
    with pytest.raises(CatalogError, match="no 'keywords' column"):
        read_catalog(path)


def test_rows_with_no_keyword_are_kept_and_counted(tmp_path):
    csv_path = write_csv(
        tmp_path / "e.csv", ["id", "keywords"], [["e1", "a"], ["e2", ""], ["e3", "[]"]]
    )
    catalog = read_catalog(csv_path)
    assert catalog.ids == ["e1", "e2", "e3"]
    assert catalog.keywords == [["a"], [], []]
    assert (catalog.stats.rows, catalog.stats.empty, catalog.stats.skipped) == (3, 2, 0)

    jsonl_path = write_jsonl(
        tmp_path / "e.jsonl", [{"id": "e1", "keywords": []}, {"id": "e2", "keywords": ["a"]}]
    )
    catalog = read_catalog(jsonl_path)
    assert catalog.keywords == [[], ["a"]]
    assert catalog.stats.empty == 1


# -- streaming ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_iter_catalog_streams_bounded_batches(tmp_path, fmt):
    path = ten_rows(tmp_path, fmt)
    stats = ReadStats()
    batches = list(iter_catalog(path, batch_size=3, stats=stats))
    assert [len(b) for b in batches] == [3, 3, 3, 1]
    assert [i for b in batches for i in b.ids] == [f"m{i}" for i in range(10)]
    assert batches[-1].keywords == [["k9", "shared"]]
    assert stats.rows == 10


# -- the real TMDB data ------------------------------------------------------------------------


def test_tmdb_5000_movies():
    if not TMDB_ZIP.exists():
        pytest.skip(f"{TMDB_ZIP} is not present")
    catalog = read_catalog(TMDB_ZIP)
    assert len(catalog) == 4803
    assert catalog.stats.rows == 4803
    assert catalog.stats.skipped == 0
    assert catalog.stats.empty == 412
    assert sum(1 for k in catalog.keywords if not k) == 412
    assert catalog.genres is not None
    assert len(catalog.genres) == 4803
    assert sum(1 for g in catalog.genres if g) > 4700
    assert len(set(catalog.ids)) == 4803


# -- regressions -------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [["id", "keywords"], ["keywords", "id"]])
def test_csv_with_utf8_bom(tmp_path, header):
    rows = [["m7", "a|b"], ["m8", "c"]] if header[0] == "id" else [["a|b", "m7"], ["c", "m8"]]
    path = tmp_path / "bom.csv"
    write_csv(path, header, rows)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    catalog = read_catalog(path)
    assert catalog.ids == ["m7", "m8"]
    assert catalog.keywords == [["a", "b"], ["c"]]


def test_jsonl_genres_after_a_first_record_without_them(tmp_path):
    path = write_jsonl(
        tmp_path / "g.jsonl",
        [{"id": "g1", "keywords": ["a"]}, {"id": "g2", "keywords": ["b"], "genres": ["Drama"]}],
    )
    assert read_catalog(path).genres == [[], ["Drama"]]
