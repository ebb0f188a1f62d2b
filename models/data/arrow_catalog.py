"""Catalogs as Arrow batches, for projection at scale: item ids and keyword lists as Arrow
arrays, never a Python object per keyword. The same formats, columns and errors as the row
readers of catalog.py, which these readers share (and fall back to where Arrow has no reader).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from topicproj.models.errors import CatalogError

from .catalog import (
    CatalogBatch,
    ReadStats,
    _check_columns,
    _existing_file,
    _iter_jsonl,
    _open_binary,
    _parquet_file,
    _parse_terms,
    _text,
    detect_format,
    iter_catalog,
)
from .columns import DEFAULT_COLUMNS, Columns
from .storage import Location

JSON_BLOCK_BYTES = 1 << 22  # pyarrow's JSON reader parses this much at a time, in parallel


@dataclass
class ArrowBatch:
    """Item ids (strings) and keyword lists as Arrow arrays, never as Python objects per keyword;
    with the columns a projection passes through (`Columns.keep`), as strings."""

    ids: pa.Array
    keywords: pa.ListArray
    kept: dict[str, pa.Array] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def filter(self, mask: pa.Array) -> ArrowBatch:
        kept = {name: column.filter(mask) for name, column in self.kept.items()}
        return ArrowBatch(self.ids.filter(mask), self.keywords.filter(mask), kept)

    def slice(self, start: int, length: int) -> ArrowBatch:
        kept = {name: column.slice(start, length) for name, column in self.kept.items()}
        return ArrowBatch(self.ids.slice(start, length), self.keywords.slice(start, length), kept)

    @classmethod
    def from_rows(cls, batch: CatalogBatch) -> ArrowBatch:
        return cls(
            pa.array(batch.ids, type=pa.string()),
            pa.array(batch.keywords, type=pa.list_(pa.string())),
            {name: pa.array(values, type=pa.string()) for name, values in batch.kept.items()},
        )


def text_column(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A kept column as strings, as the row readers write it (`_text`)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_string(column.type):
        return column
    if pa.types.is_large_string(column.type) or pa.types.is_integer(column.type):
        return pc.cast(column, pa.string())
    return pa.array([_text(v) for v in column.to_pylist()], type=pa.string())


def keywords_column(
    column: pa.Array | pa.ChunkedArray,
    path: str | Path = "",
    *,
    separator: str = "|",
    skip_bad_rows: bool = False,
    first_row: int = 0,
) -> tuple[pa.ListArray, np.ndarray | None]:
    """A keywords column as a list<string> array.

    A list of strings passes through, a list of `{"name": ...}` objects (TMDB's form, as a JSON
    reader types it) becomes the names; a string column is split on `separator` and trimmed
    with Arrow kernels; JSON-list strings (TMDB's CSV form) are parsed row by row, the one case
    without a kernel. Returns the lists and, when `skip_bad_rows` dropped some rows, a mask of
    the rows kept. Errors name the row as `first_row` + its position in the column + 1.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_null(column.type):  # every cell null, as a JSON reader types it
        return pa.array([[]] * len(column), type=pa.list_(pa.string())), None
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        value_type = column.type.value_type
        if pa.types.is_struct(value_type) and value_type.get_field_index("name") >= 0:
            names = pc.struct_field(column.flatten(), "name")
            column = pa.ListArray.from_arrays(
                pc.subtract(column.offsets, column.offsets[0]), names, mask=column.is_null()
            )
        elif not pa.types.is_string(value_type):
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
                parsed.append(_parse_terms(value, "keywords", separator))
            except ValueError as e:
                if not skip_bad_rows:
                    raise CatalogError(path, str(e), row=first_row + row + 1) from None
                parsed.append([])  # a placeholder, filtered out by the mask
                kept[row] = False
        lists = pa.array(parsed, type=pa.list_(pa.string()))
        return lists, (None if kept.all() else kept)
    split = pc.split_pattern(text, separator)
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
    columns: Columns = DEFAULT_COLUMNS,
) -> Iterator[ArrowBatch]:
    """Stream a catalog as Arrow batches. Parquet stays in Arrow end to end; other formats go
    through their row readers (which check each row) and are converted per batch."""
    fmt = (format or detect_format(path)).lower()
    stats = stats if stats is not None else ReadStats()
    if fmt == "jsonl":
        loc = _existing_file(path)
        yield from _iter_jsonl_arrow(loc, batch_size, skip_bad_rows, stats, columns)
        return
    if fmt != "parquet":
        for batch in iter_catalog(
            path,
            format=fmt,
            batch_size=batch_size,
            skip_bad_rows=skip_bad_rows,
            stats=stats,
            columns=columns,
        ):
            yield ArrowBatch.from_rows(batch)
        return
    loc = _existing_file(path)
    path = loc.uri
    pf = _parquet_file(loc)
    names = pf.schema_arrow.names
    _check_columns(path, columns, names, row=None)
    has_id = columns.id in names
    wanted = [columns.keywords, *columns.keep] + ([columns.id] if has_id else [])
    first = 0  # rows of this file before the batch
    for record_batch in pf.iter_batches(batch_size=batch_size, columns=wanted):
        n = record_batch.num_rows
        if has_id:
            ids = pc.fill_null(pc.cast(record_batch.column(columns.id), pa.string()), "")
        else:
            ids = pa.array(np.arange(first + 1, first + n + 1).astype(str))
        keywords, kept = keywords_column(
            record_batch.column(columns.keywords),
            path,
            separator=columns.separator,
            skip_bad_rows=skip_bad_rows,
            first_row=first,
        )
        batch = ArrowBatch(
            ids, keywords, {k: text_column(record_batch.column(k)) for k in columns.keep}
        )
        first += n
        if kept is not None:
            for row in np.flatnonzero(~kept):
                stats.skip(
                    CatalogError(path, "keywords: invalid JSON list", row=first - n + row + 1)
                )
            batch = batch.filter(pa.array(kept))
        stats.rows += len(batch)
        stats.empty += int(pc.sum(pc.equal(pc.list_value_length(batch.keywords), 0)).as_py() or 0)
        yield batch


def _iter_jsonl_arrow(
    loc: Location, batch_size: int, skip_bad_rows: bool, stats: ReadStats, columns: Columns
) -> Iterator[ArrowBatch]:
    """JSONL through pyarrow's JSON reader, which parses in C++ without the GIL, falling back to
    the row reader from the first block it cannot take exactly as the row reader would.

    The fast path takes a block only when every record has a non-null id (string or integer)
    and a non-null keywords list of non-empty strings, or a string; anything else (a missing
    field, TMDB's objects, a malformed line, text that is not UTF-8, a type that changes between
    blocks, a kept column) is left to the row reader, which names the bad row or skips it, from
    that record on.
    """
    done = 0  # records yielded by the fast path
    if not columns.keep:
        try:
            with _open_binary(loc) as raw:
                options = pajson.ReadOptions(block_size=JSON_BLOCK_BYTES)
                reader = pajson.open_json(raw, read_options=options)
                for block in reader:
                    batch = _exact_block(block, loc.uri, done, columns)
                    if batch is None:
                        break
                    for start in range(0, len(batch), batch_size):
                        part = batch.slice(start, batch_size)
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
    for batch in _iter_jsonl(loc, batch_size, skip_bad_rows, stats, columns, skip=done):
        stats.rows += len(batch)
        stats.empty += sum(1 for k in batch.keywords if not k)
        yield ArrowBatch.from_rows(batch)


def _exact_block(
    block: pa.RecordBatch, path: str, first: int, columns: Columns
) -> ArrowBatch | None:
    """A block as the row reader would read it, or None where it might read it otherwise."""
    names = block.schema.names
    if columns.keywords not in names or columns.id not in names:
        return None
    ids, column = block.column(columns.id), block.column(columns.keywords)
    if ids.null_count or column.null_count:
        return None
    if not (pa.types.is_string(ids.type) or pa.types.is_integer(ids.type)):
        return None
    is_list = pa.types.is_list(column.type) and pa.types.is_string(column.type.value_type)
    if not (is_list or pa.types.is_string(column.type)):
        return None
    try:
        keywords, kept = keywords_column(column, path, separator=columns.separator, first_row=first)
    except CatalogError:
        return None
    if kept is not None:
        return None
    flat = pc.list_flatten(keywords)
    if is_list and (flat.null_count or pc.any(pc.equal(pc.utf8_trim_whitespace(flat), "")).as_py()):
        return None  # the row reader drops blank keywords; the lists here keep them
    return ArrowBatch(pc.cast(ids, pa.string()), keywords)
