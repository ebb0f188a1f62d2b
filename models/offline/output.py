"""A projection written as a directory of Parquet parts, complete only once `_SUCCESS` is there.

Object stores have no atomic rename of a directory, so completeness is a marker instead: parts
are written under `_temporary/<run>/` and moved to the directory's top level, and `_SUCCESS`
(JSON: the row counts, the model version and each part with its rows) is written last. A reader
(`read_projection`) refuses a directory without it and reads exactly the parts it names, checking
each part's rows against it; a rerun first removes the marker, so a half-replaced output never
looks complete. The local engine and the Ray engine both write this form.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from topicproj.models.data.storage import Location, locate, storage_errors
from topicproj.models.errors import OutputExistsError, RowCountError, StorageError

from .accounting import RowCounts

MARKER = "_SUCCESS"
TEMPORARY = "_temporary"
MARKER_FORMAT = "topicproj.projection/1"
PART = re.compile(r"^part-[\w.-]+\.parquet$")


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


@dataclass
class Part:
    name: str  # relative to the output directory
    rows: int
    input: str | None = None  # the catalog file it projects, where one part is one file


class OutputDirectory:
    """The output directory of one run: its parts, its temporary prefix and its marker."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self.fs = location.filesystem
        self.run = uuid.uuid4().hex[:12]

    @property
    def temporary(self) -> Location:
        return self.location.child(TEMPORARY).child(self.run)

    def marker(self) -> dict[str, Any] | None:
        """The marker of a complete output, or None."""
        return read_marker(self.location)

    def entries(self) -> list[pafs.FileInfo]:
        with storage_errors(self.location.uri):
            selector = pafs.FileSelector(self.location.path, allow_not_found=True)
            return self.fs.get_file_info(selector)

    def prepare(self, *, keep_parts: bool) -> None:
        """Make the directory ready for this run.

        Without `keep_parts` whatever a previous run left is removed, the marker first, so the
        output stops looking complete before any part of it goes. A directory holding anything
        but parts, a marker and temporaries is not a projection, and is refused, not emptied.
        """
        info = self.location.info()
        if info.type == pafs.FileType.File:
            raise OutputExistsError(
                self.location.uri, "is a file; a directory output needs a new name or the file gone"
            )
        strangers = [
            e.base_name
            for e in self.entries()
            if e.base_name not in (MARKER, TEMPORARY) and not PART.match(e.base_name)
        ]
        if strangers:
            raise OutputExistsError(
                self.location.uri,
                f"holds files that are not a projection's ({', '.join(sorted(strangers)[:3])}); "
                "choose an empty or new output",
            )
        with storage_errors(self.location.uri):
            self._delete_file(self.location.child(MARKER))
            if not keep_parts:
                self.fs.delete_dir_contents(self.location.path, missing_dir_ok=True)
            elif self.location.child(TEMPORARY).exists():  # what an interrupted run was writing
                self.fs.delete_dir(self.location.child(TEMPORARY).path)
            self.fs.create_dir(self.temporary.path, recursive=True)

    def commit_part(self, name: str) -> None:
        """Move a finished part from this run's temporary prefix to the top level."""
        with storage_errors(self.location.uri):
            self.fs.move(self.temporary.child(name).path, self.location.child(name).path)

    def finish(self, parts: list[Part], counts: RowCounts, details: dict[str, Any]) -> None:
        """Write the marker, after every part is in place; then drop the temporary prefix."""
        marker = {
            "format": MARKER_FORMAT,
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            **details,
            "rows": counts.to_dict(),
            "parts": [vars(p) for p in parts],
        }
        data = json.dumps(marker, indent=1).encode()
        with storage_errors(self.location.uri):
            if self.location.is_local:  # write, flush, rename: whole or absent after a crash
                tmp = self.temporary.child(MARKER)
                with open(tmp.path, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp.path, self.location.child(MARKER).path)
            else:  # one PUT: an object store shows it whole or not at all
                with self.fs.open_output_stream(self.location.child(MARKER).path) as f:
                    f.write(data)
            self.discard()

    def discard(self) -> None:
        """Remove this run's temporary prefix (and the `_temporary` folder once empty)."""
        if self.temporary.exists():
            self.fs.delete_dir(self.temporary.path)
        parent = self.location.child(TEMPORARY)
        try:
            if not self.fs.get_file_info(pafs.FileSelector(parent.path, allow_not_found=True)):
                self.fs.delete_dir(parent.path)
        except OSError:
            pass  # another run's temporaries are there, or the store has no empty directories

    def _delete_file(self, loc: Location) -> None:
        if loc.info().type == pafs.FileType.File:
            self.fs.delete_file(loc.path)


def read_marker(location: Location) -> dict[str, Any] | None:
    marker = location.child(MARKER)
    if marker.info().type != pafs.FileType.File:
        return None
    with storage_errors(marker.uri), location.filesystem.open_input_stream(marker.path) as f:
        data = json.loads(f.read())
    if data.get("format") != MARKER_FORMAT:
        raise StorageError(marker.uri, f"not a topicproj marker (format {data.get('format')!r})")
    return data


def footer_rows(location: Location) -> int:
    """Rows in a Parquet file, from its footer; an unreadable footer is a truncated file."""
    with storage_errors(location.uri):
        source = location.filesystem.open_input_file(location.path)
    try:
        with source:
            return pq.ParquetFile(source).metadata.num_rows
    except (pa.ArrowException, OSError) as e:
        raise RowCountError(location.uri, f"the file is not whole Parquet ({e})") from None


def read_projection(output: str) -> pa.Table:
    """A projection as one table: a Parquet file, or a directory that its marker says is whole.

    The parts are checked against the marker's row counts, so a part truncated or replaced after
    the run fails here instead of reading short.
    """
    loc = locate(output)
    if loc.info().type == pafs.FileType.File:
        with storage_errors(loc.uri):
            return pq.read_table(loc.path, filesystem=loc.filesystem)
    marker = read_marker(loc)
    if marker is None:
        raise StorageError(loc.uri, f"no {MARKER} marker: the run that wrote it did not finish")
    tables = []
    for part in marker["parts"]:
        where = loc.child(part["name"])
        rows = footer_rows(where)
        if rows != part["rows"]:
            raise RowCountError(
                where.uri, f"the marker says {part['rows']} rows, the file has {rows}"
            )
        with storage_errors(where.uri):
            tables.append(pq.read_table(where.path, filesystem=loc.filesystem))
    table = pa.concat_tables(tables) if tables else pa.table({})
    if table.num_rows != marker["rows"]["written"]:
        raise RowCountError(loc.uri, "the parts do not add up to the marker's rows")
    return table
