"""Offline projection: stream a catalog through the model into Parquet (or .npy), in batches.

Memory is bounded by the batch size, not by the catalog: read a batch, map its keywords to ids
with Arrow kernels, project it, append it to the output, repeat; reading and writing run in
threads beside the model (`overlap.py`). A local file output is written under a temporary name
and renamed into place at the end, so an interrupted run never leaves a file that looks complete.
An output on object storage, or a run that may be resumed, is a directory with one part per
input file and a `_SUCCESS` marker written last (`output.py`). Every run accounts for its rows
(`accounting.py`). `project_arrow` (`batch.py`) is the per-batch function; the Ray engine
calls it too.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from topicproj.models.core.tempfiles import remove_leftovers, temporary_sibling
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.arrow_catalog import ArrowBatch, iter_catalog_arrow
from topicproj.models.data.catalog import (
    FORMATS,
    Columns,
    ReadStats,
    detect_format,
)
from topicproj.models.data.columns import DEFAULT_COLUMNS
from topicproj.models.data.storage import Location, expand, locate, storage_errors
from topicproj.models.errors import CatalogError, OptionError, OutputExistsError, RowCountError

from .accounting import RowCounts
from .batch import METADATA_LABELS, METADATA_VERSION, output_schema, project_arrow
from .output import PART, OutputDirectory, Part, footer_rows, part_name, read_marker
from .overlap import WriteBehind, read_ahead
from .unknown import MAX_UNKNOWN_SHARE, KeywordTally
from .writers import NpyWriter, npy_rows, parquet_writer

CATALOG_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".parquet", ".pq", ".zip", ".gz")
METADATA_ROWS = b"topicproj.rows"  # the run's row counts, JSON
METADATA_PART = b"topicproj.part"  # in a directory's part: its input and options, JSON

# project_arrow and parquet_writer are imported from here by callers of the engine
__all__ = [
    "parquet_writer",
    "project_arrow",
    "project_catalog",
    "read_model_version",
    "read_topic_labels",
]


def expand_inputs(spec: str | Path) -> list[str]:
    """A file, a directory (its catalog files, sorted) or a glob pattern, local or a URI, as a
    list of files."""
    paths = expand(spec, CATALOG_SUFFIXES)
    if not paths:
        raise CatalogError(str(spec), "matches no catalog files")
    return paths


@dataclass
class ProjectionSummary:
    counts: RowCounts
    seconds: float
    files: int
    output: str
    resumed_files: int = 0  # files whose parts a resumed run kept
    details: dict[str, Any] = field(default_factory=dict)
    keywords: KeywordTally = field(default_factory=KeywordTally)

    @property
    def items(self) -> int:
        return self.counts.projected

    @property
    def skipped(self) -> int:
        return self.counts.skipped

    @property
    def items_per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("inf")

    def line(self) -> str:
        c = self.counts
        resumed = (
            f", {self.resumed_files} kept from the interrupted run" if self.resumed_files else ""
        )
        return (
            f"projected {c.projected} items from {self.files} file(s){resumed} in "
            f"{self.seconds:.1f} s ({self.items_per_second:,.0f} items/s); read {c.read} rows, "
            f"{c.skipped} bad rows skipped, wrote {c.written} rows to {self.output}; "
            f"{self.keywords.unknown} of {self.keywords.keywords} keywords "
            f"({self.keywords.share():.0%}) unknown to the model"
        )


@dataclass(frozen=True)
class _Options:
    top_k: int
    extras: bool
    explain: int | None


def project_catalog(
    model: TopicModel,
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    format: str | None = None,
    batch_size: int = 8192,
    top_k: int = 0,
    extras: bool = True,
    skip_bad_rows: bool = False,
    progress: bool = True,
    explain: int | None = None,
    resume: bool = False,
    columns: Columns = DEFAULT_COLUMNS,
    max_unknown: float | None = MAX_UNKNOWN_SHARE,
) -> ProjectionSummary:
    """Project every item of `inputs` into `output`, a local path or a URI.

    A local `.parquet` or `.npy` (the dense matrix) path gets one file. An output on object
    storage, or any output with `resume=True`, is a directory: one Parquet part per input file
    and a `_SUCCESS` marker with the row counts. `resume=True` keeps the parts an interrupted run
    finished (same input, model and options) and projects only the rest.
    `explain=N` adds a column `explanation` (Parquet only): per item, the gRPC contract's
    `Explanation` as JSON (`ItemExplanation.to_dict`) with N keywords per topic.
    `columns` names the input's columns and the ones passed through to the output.
    A run in which more than `max_unknown` of the keywords are unknown to the model fails
    with `UnknownKeywordsError` and leaves no output (None allows any share).
    """
    if top_k < 0:
        raise OptionError("top_k", f"must be >= 0, got {top_k}")
    sources = [str(p) for p in inputs]
    if format is not None and format not in FORMATS:
        raise CatalogError(sources[0], f"unknown format {format!r}")
    if format is None:
        for p in sources:
            detect_format(p)  # fail on an unknown extension before writing anything
    out = locate(output)
    suffix = Path(out.path).suffix.lower()
    directory = resume or not out.is_local
    if suffix == ".npy" and directory:
        raise CatalogError(
            out.uri,
            "a .npy output is one local file: it cannot be resumed "
            "or written to object storage; use .parquet",
        )
    if not directory and suffix not in (".parquet", ".npy"):
        raise CatalogError(out.uri, "output must end in .parquet or .npy")
    if explain is not None and suffix == ".npy":
        raise CatalogError(out.uri, "explanations need a .parquet output")
    npy = suffix == ".npy"
    options = _Options(0 if npy else top_k, extras and not npy, None if npy else explain)
    run = _Run(
        model, format, batch_size, skip_bad_rows, options, _bar(progress), columns, max_unknown
    )
    start = time.perf_counter()
    try:
        with _compute_threads(model):
            if directory:
                counts, resumed = run.to_directory(sources, out, resume)
            else:
                counts, resumed = run.to_file(sources, out), 0
    finally:
        if run.bar is not None:
            run.bar.close()
    return ProjectionSummary(
        counts=counts,
        seconds=time.perf_counter() - start,
        files=len(sources),
        output=out.uri,
        resumed_files=resumed,
        keywords=run.tally,
    )


@dataclass
class _Run:
    model: TopicModel
    format: str | None
    batch_size: int
    skip_bad_rows: bool
    options: _Options
    bar: Any
    columns: Columns = DEFAULT_COLUMNS
    max_unknown: float | None = MAX_UNKNOWN_SHARE
    tally: KeywordTally = field(default_factory=KeywordTally)

    @property
    def schema(self) -> pa.Schema:
        o = self.options
        return output_schema(self.model, o.top_k, o.extras, o.explain, self.columns.keep)

    def check_unknown(self) -> None:
        self.tally.check(self.max_unknown, self.columns.separator)

    def stream(self, sources: list[str], counts: RowCounts) -> Iterator[pa.RecordBatch]:
        """Projected batches of `sources`, read ahead in a thread; `counts` filled as it goes."""
        stats = ReadStats()

        def batches() -> Iterator[ArrowBatch]:
            for path in sources:
                yield from iter_catalog_arrow(
                    path,
                    format=self.format,
                    batch_size=self.batch_size,
                    skip_bad_rows=self.skip_bad_rows,
                    stats=stats,
                    columns=self.columns,
                )

        o = self.options
        for batch in read_ahead(batches):
            record = project_arrow(
                self.model,
                batch,
                top_k=o.top_k,
                extras=o.extras,
                explain=o.explain,
                tally=self.tally,
            )
            counts.projected += len(record)
            if self.bar is not None:
                self.bar.update(len(record))
            yield record
        counts.read += stats.rows + stats.skipped
        counts.skipped += stats.skipped
        counts.note_bad(stats.errors)

    def to_file(self, sources: list[str], out: Location) -> RowCounts:
        """One local file, written under a temporary name and renamed when whole."""
        path = Path(out.path)
        if path.is_dir():
            raise OutputExistsError(
                out.uri, "is a directory (a resumable or Ray output): pass --resume, or remove it"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path)  # of a run that was killed while writing this output
        tmp = temporary_sibling(path)
        counts = RowCounts()
        writer: Any = None
        try:
            if path.suffix.lower() == ".npy":
                writer = NpyWriter(tmp, self.model.n_topics)
                k = self.model.n_topics
                writes = WriteBehind(
                    lambda r: writer.write(r.column("topics").flatten().to_numpy().reshape(-1, k))
                )
            else:
                writer = parquet_writer(tmp, self.schema)
                writes = WriteBehind(writer.write_batch)
            try:
                for record in self.stream(sources, counts):
                    writes.put(record)
            finally:
                writes.close()
            if isinstance(writer, NpyWriter):
                writer.close()
                counts.written = npy_rows(tmp, self.model.n_topics)
            else:
                claimed = RowCounts(**{**counts.to_dict(), "written": counts.projected})
                writer.add_key_value_metadata({METADATA_ROWS: json.dumps(claimed.to_dict())})
                writer.close()
                counts.written = footer_rows(Location(out.filesystem, str(tmp), str(tmp)))
            writer = None
            counts.check(out.uri)
            self.check_unknown()
            os.replace(tmp, path)
        except BaseException:
            if writer is not None:
                with contextlib.suppress(Exception):  # the original error is the one to report
                    writer.close()
            tmp.unlink(missing_ok=True)
            raise
        return counts

    def to_directory(
        self, sources: list[str], out: Location, resume: bool
    ) -> tuple[RowCounts, int]:
        """One part per input file under the output directory, then the `_SUCCESS` marker."""
        directory = OutputDirectory(out)
        directory.prepare(keep_parts=resume)
        present = {e.base_name for e in directory.entries() if PART.match(e.base_name)}
        parts: list[Part] = []
        total = RowCounts()
        resumed = 0
        try:
            for index, source in enumerate(sources):
                name = part_name(index)
                kept = self.finished_part(out.child(name), source) if name in present else None
                if kept is None:
                    kept = self.write_part(directory, name, source)
                    directory.commit_part(name)
                else:
                    resumed += 1
                    if self.bar is not None:
                        self.bar.update(kept.projected)
                parts.append(Part(name, kept.written, source))
                total.add(kept)
            total.check(out.uri)
            self.check_unknown()
            with storage_errors(out.uri):  # parts of a longer earlier input list
                for stale in present - {p.name for p in parts}:
                    out.filesystem.delete_file(out.child(stale).path)
            directory.finish(parts, total, self.details(len(sources)))
        except BaseException:
            with contextlib.suppress(Exception):
                directory.discard()
            raise
        return total, resumed

    def details(self, files: int) -> dict[str, Any]:
        return {
            "engine": "local",
            "model_version": getattr(self.model, "version_", "unversioned"),
            "topics": self.model.n_topics,
            "topic_labels": self.model.labels(),
            "files": files,
            "options": asdict(self.options),
        }

    def part_identity(self, source: str) -> dict[str, Any]:
        """What a kept part must match to stand for `source` in a resumed run."""
        identity = {
            "input": source,
            "input_size": locate(source).info().size,
            "model_version": getattr(self.model, "version_", "unversioned"),
            "options": asdict(self.options),
            "columns": asdict(self.columns),
        }
        return dict(json.loads(json.dumps(identity)))  # as read back: lists, not tuples

    def write_part(self, directory: OutputDirectory, name: str, source: str) -> RowCounts:
        target = directory.temporary.child(name)
        counts = RowCounts()
        with storage_errors(target.uri):
            writer = parquet_writer(target.path, self.schema, filesystem=target.filesystem)
        writes = WriteBehind(writer.write_batch)
        try:
            for record in self.stream([source], counts):
                writes.put(record)
        finally:
            writes.close()
        claimed = {
            **self.part_identity(source),
            "rows": {**counts.to_dict(), "written": counts.projected},
        }
        writer.add_key_value_metadata({METADATA_PART: json.dumps(claimed)})
        with storage_errors(target.uri):
            writer.close()
        counts.written = footer_rows(target)
        counts.check(f"{directory.location.uri} ({name}, from {source})")
        return counts

    def finished_part(self, part: Location, source: str) -> RowCounts | None:
        """The counts of a part a previous run finished for `source`, or None to redo it."""
        try:
            with storage_errors(part.uri):
                source_file = part.filesystem.open_input_file(part.path)
            with source_file:
                pf = pq.ParquetFile(source_file)
                metadata = pf.metadata.metadata or {}
                rows = pf.metadata.num_rows
        except (pa.ArrowException, OSError):
            return None  # truncated or unreadable: projected again
        claimed = json.loads(metadata.get(METADATA_PART, b"{}"))
        identity = self.part_identity(source)
        if {k: claimed.get(k) for k in identity} != identity:
            return None
        counts = RowCounts.from_dict({**claimed["rows"], "written": rows})
        try:
            counts.check(part.uri)
        except RowCountError:
            return None  # a part cut short after it was committed
        return counts


@contextlib.contextmanager
def _compute_threads(model: TopicModel) -> Iterator[None]:
    """Leave two cores to the read-ahead and write-behind threads while the model runs on the CPU.

    torch's intra-op threads spin while they wait for work; with every core also wanted by the
    reader and the writer they spun against them, and the element-wise ops of the activation took
    four times as long (on 2 cores: 8.3 s for a 464,000-item catalog with 2 threads, 2.2 s with 1).
    """
    import torch

    before = torch.get_num_threads()
    if model.device_.type == "cpu":
        torch.set_num_threads(max(1, min(before, (os.cpu_count() or 2) - 2)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _bar(enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(unit="item", unit_scale=True, desc="projecting", disable=None)


def _recorded(path: str | Path, key: str, metadata_key: bytes) -> Any:
    """What a projection records under `key` in a directory's marker, or the text a Parquet
    file's metadata holds under `metadata_key`; None when absent."""
    loc = locate(path)
    if loc.info().type == pafs.FileType.Directory:
        marker = read_marker(loc)
        return None if marker is None else marker.get(key)
    with storage_errors(loc.uri):
        metadata = pq.read_schema(loc.path, filesystem=loc.filesystem).metadata or {}
    value = metadata.get(metadata_key)
    return None if value is None else value.decode()


def read_topic_labels(path: str | Path) -> list[str] | None:
    """The topic labels of a projection, in topic order."""
    value = _recorded(path, "topic_labels", METADATA_LABELS)
    return json.loads(value) if isinstance(value, str) else value  # JSON in Parquet metadata


def read_model_version(path: str | Path) -> str | None:
    """The version of the model that made a projection."""
    return _recorded(path, "model_version", METADATA_VERSION)
