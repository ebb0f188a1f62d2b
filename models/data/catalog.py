"""Readers for keyword catalogs: TMDB-style CSV, JSONL, CSV and Parquet, streamed in batches.

Every reader yields `CatalogBatch`es of at most `batch_size` items, so a catalog of any size is
read in bounded memory. A malformed row raises `CatalogError` naming the file, the row and the
reason; with `skip_bad_rows=True` it is skipped and counted in `ReadStats` instead.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.json as pajson
import pyarrow.parquet as pq

from topicproj.models.errors import CatalogError

from .formats import FORMATS
from .storage import Location, locate, storage_errors

JSON_BLOCK_BYTES = 1 << 22  # pyarrow's JSON reader parses this much at a time, in parallel


@dataclass
class CatalogBatch:
    """Up to `batch_size` items: ids, keyword lists and, where the data has them, genre lists."""

    ids: list[str]
    keywords: list[list[str]]
    genres: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class ReadStats:
    """What a read saw: rows read and kept, rows skipped as bad, and rows with no keyword."""

    rows: int = 0
    skipped: int = 0
    empty: int = 0
    errors: list[str] = field(default_factory=list)  # the first few skip reasons, for the log

    def skip(self, error: CatalogError) -> None:
        self.skipped += 1
        if len(self.errors) < 10:
            self.errors.append(str(error))


@dataclass
class Catalog:
    """A whole catalog in memory (training and evaluation need every item at once)."""

    ids: list[str]
    keywords: list[list[str]]
    genres: list[list[str]] | None = None
    source: str = ""
    stats: ReadStats = field(default_factory=ReadStats)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: Any) -> Catalog:
        rows = [int(r) for r in rows]
        return Catalog(
            ids=[self.ids[r] for r in rows],
            keywords=[self.keywords[r] for r in rows],
            genres=[self.genres[r] for r in rows] if self.genres is not None else None,
            source=self.source,
        )


def detect_format(path: str | Path) -> str:
    """The reader for `path`, from its extension (compression suffixes ignored)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    while suffixes and suffixes[-1] in (".zip", ".gz"):
        suffixes.pop()
    ext = suffixes[-1] if suffixes else ""
    if ext in (".jsonl", ".ndjson"):
        return "jsonl"
    if ext in (".parquet", ".pq"):
        return "parquet"
    if ext in (".csv", ".tsv"):
        return "csv"
    raise CatalogError(
        path,
        f"cannot tell the format from the extension {ext or '(none)'!r}; pass one of "
        f"{', '.join(FORMATS)} with --format (format= in Python)",
    )


def iter_catalog(
    path: str | Path,
    *,
    format: str | None = None,
    batch_size: int = 4096,
    skip_bad_rows: bool = False,
    stats: ReadStats | None = None,
) -> Iterator[CatalogBatch]:
    """Stream a catalog file (a local path or a URI) as batches of items."""
    fmt = (format or detect_format(path)).lower()
    if fmt not in FORMATS:
        raise CatalogError(path, f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    loc = _existing_file(path)
    stats = stats if stats is not None else ReadStats()
    reader = {"csv": _iter_csv, "tmdb": _iter_csv, "jsonl": _iter_jsonl, "parquet": _iter_parquet}
    for batch in reader[fmt](loc, batch_size, skip_bad_rows, stats):
        stats.rows += len(batch)
        stats.empty += sum(1 for k in batch.keywords if not k)
        yield batch


def _existing_file(path: str | Path) -> Location:
    loc = locate(path)
    info = loc.info()
    if info.type == pafs.FileType.NotFound:
        raise CatalogError(loc.uri, "no such file")
    if info.type == pafs.FileType.Directory:
        raise CatalogError(loc.uri, "is a directory, not a catalog file")
    if info.size == 0:
        raise CatalogError(loc.uri, "file is empty")
    return loc


def read_catalog(
    path: str | Path,
    *,
    format: str | None = None,
    skip_bad_rows: bool = False,
    batch_size: int = 65536,
) -> Catalog:
    """Read a whole catalog into memory."""
    stats = ReadStats()
    ids: list[str] = []
    keywords: list[list[str]] = []
    genres: list[list[str]] | None = []
    for batch in iter_catalog(
        path, format=format, batch_size=batch_size, skip_bad_rows=skip_bad_rows, stats=stats
    ):
        ids.extend(batch.ids)
        keywords.extend(batch.keywords)
        if batch.genres is None:
            genres = None
        elif genres is not None:
            genres.extend(batch.genres)
    if genres is not None and not any(genres):
        genres = None
    return Catalog(ids=ids, keywords=keywords, genres=genres, source=str(path), stats=stats)


# -- value parsing ---------------------------------------------------------------------------


def _parse_terms(value: Any, column: str) -> list[str]:
    """A keyword (or genre) cell as a list of strings.

    Accepts a list (of strings, or of `{"name": ...}` objects as TMDB writes them), a JSON
    string holding such a list, or a plain string split on `|`. Null or empty is an empty list.
    """
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as e:
                raise ValueError(f"{column}: invalid JSON ({e.msg} at char {e.pos})") from None
        else:
            return [t for t in (p.strip() for p in text.split("|")) if t]
    if not isinstance(value, list | tuple):
        raise ValueError(f"{column}: expected a list, got {type(value).__name__}")
    out = []
    for term in value:
        if isinstance(term, dict):
            term = term.get("name")
        if not isinstance(term, str):
            raise ValueError(f"{column}: each entry must be a string or an object with a name")
        if term.strip():
            out.append(term)
    return out


class _BatchBuilder:
    def __init__(self, with_genres: bool) -> None:
        self.ids: list[str] = []
        self.keywords: list[list[str]] = []
        self.genres: list[list[str]] | None = [] if with_genres else None

    def add(self, item_id: Any, keywords: Any, genres: Any) -> None:
        kws = _parse_terms(keywords, "keywords")
        gen = _parse_terms(genres, "genres") if self.genres is not None else None
        self.ids.append("" if item_id is None else str(item_id))
        self.keywords.append(kws)
        if self.genres is not None:
            self.genres.append(gen or [])

    def __len__(self) -> int:
        return len(self.ids)

    def take(self) -> CatalogBatch:
        batch = CatalogBatch(self.ids, self.keywords, self.genres)
        self.__init__(self.genres is not None)  # type: ignore[misc]
        return batch


# -- CSV (TMDB or plain) ---------------------------------------------------------------------


@contextlib.contextmanager
def _open_binary(loc: Location) -> Iterator[IO[bytes]]:
    """The decompressed bytes of a file: plain, .gz, or the single CSV inside a .zip."""
    suffix = Path(loc.path).suffix.lower()
    if suffix == ".zip":
        with storage_errors(loc.uri):
            raw = loc.filesystem.open_input_file(loc.path)  # zip needs to seek
        try:
            zf = zipfile.ZipFile(raw)
        except zipfile.BadZipFile as e:
            raise CatalogError(loc.uri, f"not a valid zip archive ({e})") from None
        with raw, zf:
            names = [n for n in zf.namelist() if not n.endswith("/") and "__MACOSX" not in n]
            if len(names) != 1:
                raise CatalogError(loc.uri, f"zip must hold exactly one file, found {len(names)}")
            with zf.open(names[0]) as f:
                yield f
        return
    with storage_errors(loc.uri):
        raw = loc.filesystem.open_input_stream(loc.path, compression=None)
    with raw:
        if suffix == ".gz":
            with gzip.open(raw, "rb") as f:  # type: ignore[call-overload]
                yield f
        else:
            yield raw  # type: ignore[misc]


def _iter_csv(
    loc: Location, batch_size: int, skip_bad_rows: bool, stats: ReadStats
) -> Iterator[CatalogBatch]:
    path = loc.uri
    delimiter = "\t" if ".tsv" in [s.lower() for s in Path(loc.path).suffixes] else ","
    with _open_binary(loc) as f:
        head = f.read(1 << 16)
    first_line = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace")  # Excel writes a BOM
    columns = [c.strip().strip('"') for c in first_line.split(delimiter)]
    if "keywords" not in columns:
        raise CatalogError(path, "no 'keywords' column in the header", row=0)
    wanted = [c for c in ("id", "keywords", "genres") if c in columns]
    bad_row: list[int | None] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        # Row numbers from pyarrow count lines from 1 with the header as line 1.
        number = None if row.number is None else row.number - 1
        error = CatalogError(path, f"malformed CSV row ({row.text[:80]!r})", row=number)
        if skip_bad_rows:
            stats.skip(error)
            return "skip"
        bad_row.append(number)
        return "error"

    read = pacsv.ReadOptions(block_size=1 << 20, use_threads=False)
    parse = pacsv.ParseOptions(
        delimiter=delimiter, newlines_in_values=True, invalid_row_handler=on_invalid
    )
    convert = pacsv.ConvertOptions(
        include_columns=wanted, column_types={c: pa.string() for c in wanted}
    )
    row = 0
    with _open_binary(loc) as f:
        try:
            reader = pacsv.open_csv(
                io.BufferedReader(f),
                read_options=read,
                parse_options=parse,  # type: ignore[arg-type]
                convert_options=convert,
            )
            builder = _BatchBuilder("genres" in wanted)
            for record_batch in reader:
                cols = {name: record_batch.column(name).to_pylist() for name in wanted}
                for i in range(record_batch.num_rows):
                    row += 1
                    item_id = cols["id"][i] if "id" in cols else str(row)
                    try:
                        builder.add(
                            item_id, cols["keywords"][i], cols.get("genres", [None] * (i + 1))[i]
                        )
                    except ValueError as e:
                        error = CatalogError(path, str(e), row=row)
                        if not skip_bad_rows:
                            raise error from None
                        stats.skip(error)
                        continue
                    if len(builder) >= batch_size:
                        yield builder.take()
            if len(builder):
                yield builder.take()
        except (pa.ArrowInvalid, UnicodeDecodeError) as e:
            where = bad_row[0] if bad_row else None
            raise CatalogError(
                path, f"unreadable CSV: {str(e).splitlines()[0]}", row=where
            ) from None


# -- JSONL -----------------------------------------------------------------------------------


def _iter_jsonl(
    loc: Location, batch_size: int, skip_bad_rows: bool, stats: ReadStats, skip: int = 0
) -> Iterator[CatalogBatch]:
    """Records one by one; the first `skip` records (already read another way) are passed over."""
    path = loc.uri
    builder: _BatchBuilder | None = None
    with _open_binary(loc) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8")
        for line_no, line in enumerate(text, start=1):
            if not line.strip():
                continue
            if skip:
                skip -= 1
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("expected a JSON object")
                if "keywords" not in record:
                    raise ValueError("missing 'keywords'")
                if builder is None:
                    # Genres may first appear on any record; `read_catalog` drops them if none has.
                    builder = _BatchBuilder(True)
                builder.add(record.get("id", line_no), record["keywords"], record.get("genres"))
            except json.JSONDecodeError as e:
                error = CatalogError(path, f"invalid JSON ({e.msg})", row=line_no)
            except ValueError as e:
                error = CatalogError(path, str(e), row=line_no)
            else:
                if len(builder) >= batch_size:
                    yield builder.take()
                continue
            if not skip_bad_rows:
                raise error
            stats.skip(error)
    if builder is not None and len(builder):
        yield builder.take()


# -- Parquet ---------------------------------------------------------------------------------


def _iter_parquet(
    loc: Location, batch_size: int, skip_bad_rows: bool, stats: ReadStats
) -> Iterator[CatalogBatch]:
    path = loc.uri
    pf = _parquet_file(loc)
    names = pf.schema_arrow.names
    if "keywords" not in names:
        raise CatalogError(path, "no 'keywords' column")
    wanted = [c for c in ("id", "keywords", "genres") if c in names]
    builder = _BatchBuilder("genres" in wanted)
    row = 0
    for record_batch in pf.iter_batches(batch_size=batch_size, columns=wanted):
        cols = {name: record_batch.column(name).to_pylist() for name in wanted}
        for i in range(record_batch.num_rows):
            row += 1
            try:
                builder.add(
                    cols["id"][i] if "id" in cols else row,
                    cols["keywords"][i],
                    cols["genres"][i] if "genres" in cols else None,
                )
            except ValueError as e:
                error = CatalogError(path, str(e), row=row)
                if not skip_bad_rows:
                    raise error from None
                stats.skip(error)
                continue
            if len(builder) >= batch_size:
                yield builder.take()
    if len(builder):
        yield builder.take()


# -- Arrow batches, for projection at scale -----------------------------------------------------


@dataclass
class ArrowBatch:
    """Item ids (strings) and keyword lists as Arrow arrays, never as Python objects per keyword."""

    ids: pa.Array
    keywords: pa.ListArray

    def __len__(self) -> int:
        return len(self.ids)


def keywords_column(
    column: pa.Array | pa.ChunkedArray,
    path: str | Path = "",
    *,
    skip_bad_rows: bool = False,
    first_row: int = 0,
) -> tuple[pa.ListArray, np.ndarray | None]:
    """A `keywords` column as a list<string> array.

    A list column passes through; a `|`-separated string column is split and trimmed with Arrow
    kernels; JSON-list strings (TMDB's form) are parsed row by row, the one case without a kernel.
    Returns the lists and, when `skip_bad_rows` dropped some rows, a mask of the rows kept.
    Errors name the row as `first_row` + its position in the column + 1.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        if not pa.types.is_string(column.type.value_type):
            column = column.cast(pa.list_(pa.string()))
        return pc.fill_null(column, pa.scalar([], type=column.type)), None
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise CatalogError(path, f"keywords column has type {column.type}, not a list or string")
    text = pc.fill_null(pc.utf8_trim_whitespace(column), "")
    if pc.any(pc.starts_with(text, "[")).as_py():
        parsed = []
        kept = np.ones(len(text), dtype=bool)
        for row, value in enumerate(text.to_pylist()):
            try:
                parsed.append(_parse_terms(value, "keywords"))
            except ValueError as e:
                if not skip_bad_rows:
                    raise CatalogError(path, str(e), row=first_row + row + 1) from None
                parsed.append([])  # a placeholder, filtered out by the mask
                kept[row] = False
        lists = pa.array(parsed, type=pa.list_(pa.string()))
        return lists, (None if kept.all() else kept)
    split = pc.split_pattern(text, "|")
    flat = pc.utf8_trim_whitespace(split.flatten())
    keep = pc.not_equal(flat, "")
    rows = pc.list_parent_indices(split)
    lengths = np.bincount(rows.filter(keep).to_numpy(), minlength=len(split))
    offsets = np.zeros(len(split) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), flat.filter(keep)), None


def iter_catalog_arrow(
    path: str | Path,
    *,
    format: str | None = None,
    batch_size: int = 65536,
    skip_bad_rows: bool = False,
    stats: ReadStats | None = None,
) -> Iterator[ArrowBatch]:
    """Stream a catalog as Arrow batches. Parquet stays in Arrow end to end; other formats go
    through their row readers (which check each row) and are converted per batch."""
    fmt = (format or detect_format(path)).lower()
    stats = stats if stats is not None else ReadStats()
    if fmt == "jsonl":
        yield from _iter_jsonl_arrow(_existing_file(path), batch_size, skip_bad_rows, stats)
        return
    if fmt != "parquet":
        for batch in iter_catalog(
            path, format=fmt, batch_size=batch_size, skip_bad_rows=skip_bad_rows, stats=stats
        ):
            yield ArrowBatch(
                pa.array(batch.ids, type=pa.string()),
                pa.array(batch.keywords, type=pa.list_(pa.string())),
            )
        return
    loc = _existing_file(path)
    path = loc.uri
    pf = _parquet_file(loc)
    names = pf.schema_arrow.names
    if "keywords" not in names:
        raise CatalogError(path, "no 'keywords' column")
    columns = ["keywords"] + (["id"] if "id" in names else [])
    first = 0  # rows of this file before the batch
    for record_batch in pf.iter_batches(batch_size=batch_size, columns=columns):
        n = record_batch.num_rows
        if "id" in names:
            ids = pc.cast(record_batch.column("id"), pa.string())
        else:
            ids = pa.array(np.arange(first + 1, first + n + 1).astype(str))
        keywords, kept = keywords_column(
            record_batch.column("keywords"), path, skip_bad_rows=skip_bad_rows, first_row=first
        )
        first += n
        if kept is not None:
            for row in np.flatnonzero(~kept):
                stats.skip(
                    CatalogError(path, "keywords: invalid JSON list", row=first - n + row + 1)
                )
            ids, keywords = ids.filter(pa.array(kept)), keywords.filter(pa.array(kept))
        stats.rows += len(keywords)
        stats.empty += int(pc.sum(pc.equal(pc.list_value_length(keywords), 0)).as_py() or 0)
        yield ArrowBatch(pc.fill_null(ids, ""), keywords)


def _parquet_file(loc: Location) -> pq.ParquetFile:
    with storage_errors(loc.uri):
        source = loc.filesystem.open_input_file(loc.path)
    try:
        return pq.ParquetFile(source)
    except pa.ArrowException as e:
        source.close()
        raise CatalogError(loc.uri, f"not a readable Parquet file ({e})") from None


def _iter_jsonl_arrow(
    loc: Location, batch_size: int, skip_bad_rows: bool, stats: ReadStats
) -> Iterator[ArrowBatch]:
    """JSONL through pyarrow's JSON reader, which parses in C++ without the GIL, falling back to
    the row reader from the first block it cannot take exactly as the row reader would.

    The fast path takes a block only when every record has a non-null id (string or integer)
    and a non-null `keywords` list of non-empty strings, or a string; anything else (a missing
    field, TMDB's objects, a malformed line, a type that changes between blocks) is left to the
    row reader, which names the bad row or skips it, from that record on.
    """
    done = 0  # records yielded by the fast path
    try:
        with _open_binary(loc) as raw:
            options = pajson.ReadOptions(block_size=JSON_BLOCK_BYTES)
            reader = pajson.open_json(raw, read_options=options)
            for block in reader:
                batch = _exact_block(block, loc.uri, done)
                if batch is None:
                    break
                for start in range(0, len(batch), batch_size):
                    part = ArrowBatch(
                        batch.ids.slice(start, batch_size), batch.keywords.slice(start, batch_size)
                    )
                    stats.rows += len(part)
                    stats.empty += int(
                        pc.sum(pc.equal(pc.list_value_length(part.keywords), 0)).as_py() or 0
                    )
                    done += len(part)
                    yield part
            else:
                return
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    for batch in _iter_jsonl(loc, batch_size, skip_bad_rows, stats, skip=done):
        stats.rows += len(batch)
        stats.empty += sum(1 for k in batch.keywords if not k)
        yield ArrowBatch(
            pa.array(batch.ids, type=pa.string()),
            pa.array(batch.keywords, type=pa.list_(pa.string())),
        )


def _exact_block(block: pa.RecordBatch, path: str, first: int) -> ArrowBatch | None:
    """A block as the row reader would read it, or None where it might read it otherwise."""
    names = block.schema.names
    if "keywords" not in names or "id" not in names:
        return None
    ids, column = block.column("id"), block.column("keywords")
    if ids.null_count or column.null_count:
        return None
    if not (pa.types.is_string(ids.type) or pa.types.is_integer(ids.type)):
        return None
    is_list = pa.types.is_list(column.type) and pa.types.is_string(column.type.value_type)
    if not (is_list or pa.types.is_string(column.type)):
        return None
    try:
        keywords, kept = keywords_column(column, path, first_row=first)
    except CatalogError:
        return None
    if kept is not None:
        return None
    flat = pc.list_flatten(keywords)
    if is_list and (flat.null_count or pc.any(pc.equal(pc.utf8_trim_whitespace(flat), "")).as_py()):
        return None  # the row reader drops blank keywords; the lists here keep them
    return ArrowBatch(pc.cast(ids, pa.string()), keywords)
