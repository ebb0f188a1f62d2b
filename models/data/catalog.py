"""Readers for keyword catalogs: TMDB-style CSV, JSONL, JSON, CSV and Parquet, in batches.

Every reader yields `CatalogBatch`es of at most `batch_size` items, so a catalog of any size is
read in bounded memory (a `.json` array excepted: it is parsed whole). A malformed row (bad
JSON, text that is not UTF-8, a cell of the wrong type) raises `CatalogError` naming the file,
the row and the reason; with `skip_bad_rows=True` it is skipped and counted in `ReadStats`
instead. Which columns hold what, and how string cells split, is a `Columns` (`columns.py`).
The same catalogs as Arrow batches, for projection at scale, are read by `arrow_catalog.py`.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from topicproj.models.errors import CatalogError

from .columns import DEFAULT_COLUMNS, Columns
from .formats import FORMATS
from .storage import Location, locate, storage_errors


@dataclass
class CatalogBatch:
    """Up to `batch_size` items: ids, keyword lists and, where the data has them, genre lists."""

    ids: list[str]
    keywords: list[list[str]]
    genres: list[list[str]] | None = None
    kept: dict[str, list[str | None]] = field(default_factory=dict)  # `Columns.keep`, as text

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
    if ext == ".json":
        return "json"
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
    columns: Columns = DEFAULT_COLUMNS,
) -> Iterator[CatalogBatch]:
    """Stream a catalog file (a local path or a URI) as batches of items."""
    fmt = (format or detect_format(path)).lower()
    if fmt not in FORMATS:
        raise CatalogError(path, f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    loc = _existing_file(path)
    stats = stats if stats is not None else ReadStats()
    reader = {
        "csv": _iter_csv,
        "tmdb": _iter_csv,
        "jsonl": _iter_jsonl,
        "json": _iter_json,
        "parquet": _iter_parquet,
    }
    for batch in reader[fmt](loc, batch_size, skip_bad_rows, stats, columns):
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
    columns: Columns = DEFAULT_COLUMNS,
) -> Catalog:
    """Read a whole catalog into memory."""
    stats = ReadStats()
    ids: list[str] = []
    keywords: list[list[str]] = []
    genres: list[list[str]] | None = []
    for batch in iter_catalog(
        path,
        format=format,
        batch_size=batch_size,
        skip_bad_rows=skip_bad_rows,
        stats=stats,
        columns=columns,
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


def _parse_terms(value: Any, column: str, separator: str = "|") -> list[str]:
    """A keyword (or genre) cell as a list of strings.

    Accepts a list (of strings, or of `{"name": ...}` objects as TMDB writes them), a JSON
    string holding such a list, or a plain string split on `separator`. Null or empty is an
    empty list.
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
            return [t for t in (p.strip() for p in text.split(separator)) if t]
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
    def __init__(self, with_genres: bool, columns: Columns) -> None:
        self.columns = columns
        self.ids: list[str] = []
        self.keywords: list[list[str]] = []
        self.genres: list[list[str]] | None = [] if with_genres else None
        self.kept: dict[str, list[str | None]] = {c: [] for c in columns.keep}

    def add(self, item_id: Any, keywords: Any, genres: Any, kept: Sequence[Any] = ()) -> None:
        c = self.columns
        kws = _parse_terms(keywords, c.keywords, c.separator)
        gen = _parse_terms(genres, c.genres) if self.genres is not None else None
        self.ids.append("" if item_id is None else str(item_id))
        self.keywords.append(kws)
        if self.genres is not None:
            self.genres.append(gen or [])
        for name, value in zip(c.keep, kept, strict=True):
            self.kept[name].append(_text(value))

    def __len__(self) -> int:
        return len(self.ids)

    def take(self) -> CatalogBatch:
        batch = CatalogBatch(self.ids, self.keywords, self.genres, self.kept)
        self.__init__(self.genres is not None, self.columns)  # type: ignore[misc]
        return batch


def _text(value: Any) -> str | None:
    """A kept cell as text, whatever the format typed it as: one output type for every input."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


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
    loc: Location, batch_size: int, skip_bad_rows: bool, stats: ReadStats, columns: Columns
) -> Iterator[CatalogBatch]:
    path = loc.uri
    delimiter = "\t" if ".tsv" in [s.lower() for s in Path(loc.path).suffixes] else ","
    with _open_binary(loc) as f:
        head = f.read(1 << 16)
    first_line = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace")  # Excel writes a BOM
    names = [c.strip().strip('"') for c in first_line.split(delimiter)]
    _check_columns(path, columns, names, row=0)
    wanted = columns.wanted(names)
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
    # Read as bytes and decoded here, so that text that is not UTF-8 is one bad row (named,
    # or skipped), not the whole file failing with no row.
    convert = pacsv.ConvertOptions(
        include_columns=wanted, column_types={c: pa.binary() for c in wanted}
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
            builder = _BatchBuilder(columns.genres in wanted, columns)
            for record_batch in reader:
                cols = {name: _decoded(record_batch.column(name)) for name in wanted}
                for i in range(record_batch.num_rows):
                    row += 1
                    try:
                        cells = {name: _cell(cols[name][i], name) for name in wanted}
                        builder.add(
                            cells.get(columns.id, str(row)),
                            cells[columns.keywords],
                            cells.get(columns.genres),
                            [cells[k] for k in columns.keep],
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


def _check_columns(path: str, columns: Columns, names: Sequence[str], row: int | None) -> None:
    missing = columns.missing(names)
    if missing:
        shown = ", ".join(repr(n) for n in list(names)[:12])
        flag = " (--keywords-column names another)" if columns.keywords in missing else ""
        raise CatalogError(
            path,
            f"no {', '.join(repr(m) for m in missing)} column{flag}; the columns are {shown}",
            row=row,
        )


def _decoded(column: pa.Array) -> list[Any]:
    """A binary column as Python strings, or as bytes where a cell is not UTF-8 (`_cell` then
    names the row); one cast for the whole batch in the usual case."""
    try:
        return column.cast(pa.string()).to_pylist()
    except pa.ArrowInvalid:
        return column.to_pylist()


def _cell(value: Any, column: str) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(
                f"{column}: not UTF-8 text (byte 0x{value[e.start]:02x} at character {e.start})"
            ) from None
    return value


# -- JSONL -----------------------------------------------------------------------------------


def _iter_jsonl(
    loc: Location,
    batch_size: int,
    skip_bad_rows: bool,
    stats: ReadStats,
    columns: Columns,
    skip: int = 0,
) -> Iterator[CatalogBatch]:
    """Records one by one; the first `skip` records (already read another way) are passed over."""
    with _open_binary(loc) as raw:
        yield from _records(
            loc.uri, _jsonl_lines(raw, skip), batch_size, skip_bad_rows, stats, columns
        )


def _jsonl_lines(raw: IO[bytes], skip: int) -> Iterator[tuple[int, Any]]:
    """(line number, record) of each non-blank line, or the error that line raises."""
    offset = 0
    for line_no, line in enumerate(io.BufferedReader(raw), start=1):  # type: ignore[arg-type]
        start, offset = offset, offset + len(line)
        if not line.strip():
            continue
        if skip:
            skip -= 1
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as e:
            yield (
                line_no,
                ValueError(
                    f"not UTF-8 text (byte 0x{line[e.start]:02x} at byte offset {start + e.start})"
                ),
            )
            continue
        try:
            yield line_no, json.loads(text)
        except json.JSONDecodeError as e:
            yield line_no, ValueError(f"invalid JSON ({e.msg})")


def _iter_json(
    loc: Location, batch_size: int, skip_bad_rows: bool, stats: ReadStats, columns: Columns
) -> Iterator[CatalogBatch]:
    """A JSON array of objects, parsed whole (JSONL is the streaming form)."""
    with _open_binary(loc) as raw:
        data = raw.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise CatalogError(
            loc.uri, f"not UTF-8 text (byte 0x{data[e.start]:02x} at byte offset {e.start})"
        ) from None
    try:
        records = json.loads(text)
    except json.JSONDecodeError as e:
        raise CatalogError(
            loc.uri, f"invalid JSON ({e.msg} at line {e.lineno}, column {e.colno})"
        ) from None
    if not isinstance(records, list):
        raise CatalogError(
            loc.uri,
            f"expected a JSON array of objects, got {type(records).__name__}; one object a line "
            "is JSONL (.jsonl)",
        )
    numbered = enumerate(records, start=1)
    yield from _records(loc.uri, numbered, batch_size, skip_bad_rows, stats, columns)


def _records(
    path: str,
    records: Iterator[tuple[int, Any]],
    batch_size: int,
    skip_bad_rows: bool,
    stats: ReadStats,
    columns: Columns,
) -> Iterator[CatalogBatch]:
    """Batches of JSON records (row number, object or the ValueError its row raised)."""
    builder: _BatchBuilder | None = None
    for row, record in records:
        try:
            if isinstance(record, ValueError):
                raise record
            if not isinstance(record, dict):
                raise ValueError("expected a JSON object")
            missing = columns.missing(record)
            if missing:
                raise ValueError(f"missing {', '.join(repr(m) for m in missing)}")
            if builder is None:
                # Genres may first appear on any record; `read_catalog` drops them if none has.
                builder = _BatchBuilder(True, columns)
            builder.add(
                record.get(columns.id, row),
                record[columns.keywords],
                record.get(columns.genres),
                [record[k] for k in columns.keep],
            )
        except ValueError as e:
            error = CatalogError(path, str(e), row=row)
            if not skip_bad_rows:
                raise error from None
            stats.skip(error)
            continue
        if len(builder) >= batch_size:
            yield builder.take()
    if builder is not None and len(builder):
        yield builder.take()


# -- Parquet ---------------------------------------------------------------------------------


def _iter_parquet(
    loc: Location, batch_size: int, skip_bad_rows: bool, stats: ReadStats, columns: Columns
) -> Iterator[CatalogBatch]:
    path = loc.uri
    pf = _parquet_file(loc)
    names = pf.schema_arrow.names
    _check_columns(path, columns, names, row=None)
    wanted = columns.wanted(names)
    builder = _BatchBuilder(columns.genres in wanted, columns)
    row = 0
    for record_batch in pf.iter_batches(batch_size=batch_size, columns=wanted):
        cols = {name: record_batch.column(name).to_pylist() for name in wanted}
        for i in range(record_batch.num_rows):
            row += 1
            try:
                builder.add(
                    cols[columns.id][i] if columns.id in cols else row,
                    cols[columns.keywords][i],
                    cols[columns.genres][i] if columns.genres in cols else None,
                    [cols[k][i] for k in columns.keep],
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


def _parquet_file(loc: Location) -> pq.ParquetFile:
    with storage_errors(loc.uri):
        source = loc.filesystem.open_input_file(loc.path)
    try:
        return pq.ParquetFile(source)
    except pa.ArrowException as e:
        source.close()
        raise CatalogError(loc.uri, f"not a readable Parquet file ({e})") from None
