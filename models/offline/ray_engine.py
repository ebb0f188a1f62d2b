"""The Ray Data engine for offline projection, for catalogs one machine cannot project in time.

Ray Data reads the catalog, an actor pool runs `ProjectBatches` (each actor loads the model once
and calls the same `project_arrow` as the local engine), and the result is written as a directory
of Parquet parts with a `_SUCCESS` marker (`output.py`), locally or on object storage. Every
actor reports its rows to one `RowTally` actor, so the run's rows are accounted for exactly.
It joins the cluster named by `address` or `RAY_ADDRESS`, and otherwise starts a local Ray
instance. `ray` is imported only here: install it with `pip install topicproj[ray]`.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.arrow_catalog import (
    ArrowBatch,
    iter_catalog_arrow,
    keywords_column,
    text_column,
)
from topicproj.models.data.catalog import CatalogError, detect_format
from topicproj.models.data.columns import DEFAULT_COLUMNS, Columns
from topicproj.models.data.storage import Location, locate, storage_errors
from topicproj.models.errors import StorageError

from .accounting import RowCounts
from .batch import project_arrow
from .output import OutputDirectory, Part, footer_rows, part_name
from .projection import ProjectionSummary
from .unknown import MAX_UNKNOWN_SHARE, KeywordTally


class RowTally:
    """One actor per run: the rows each `ProjectBatches` actor saw, and the nodes they ran on."""

    def __init__(self) -> None:
        self.counts = RowCounts()
        self.keywords = KeywordTally()
        self.nodes: set[str] = set()

    def started(self, node: str) -> None:
        self.nodes.add(node)

    def add(
        self, read: int, skipped: int, projected: int, bad: list[str], keywords: KeywordTally
    ) -> None:
        self.counts.add(RowCounts(read, skipped, projected, 0, bad))
        self.keywords.add(keywords)

    def result(self) -> tuple[dict[str, Any], list[str], KeywordTally]:
        return self.counts.to_dict(), sorted(self.nodes), self.keywords


class ProjectBatches:
    """A Ray Data callable class: loads the model once per actor, projects Arrow batches."""

    def __init__(
        self,
        model_dir: str,
        device: str,
        top_k: int,
        skip_bad_rows: bool,
        tally: Any,
        columns: Columns = DEFAULT_COLUMNS,
    ) -> None:
        import ray

        self.model = TopicModel.load(model_dir, device=device)
        self.top_k = top_k
        self.skip_bad_rows = skip_bad_rows
        self.tally = tally
        self.columns = columns
        ray.get(tally.started.remote(ray.get_runtime_context().get_node_id()))

    def __call__(self, table: pa.Table) -> pa.Table:
        import ray

        c = self.columns
        keywords, kept = keywords_column(
            table.column(c.keywords),
            "ray input",
            separator=c.separator,
            skip_bad_rows=self.skip_bad_rows,
        )
        ids = pc.fill_null(pc.cast(table.column(c.id).combine_chunks(), pa.string()), "")
        batch = ArrowBatch(ids, keywords, {k: text_column(table.column(k)) for k in c.keep})
        bad: list[str] = []
        if kept is not None:
            bad = [
                f"item {ids[int(i)].as_py()}: keywords: invalid JSON list"
                for i in (~kept).nonzero()[0][:5]
            ]
            batch = batch.filter(pa.array(kept))
        words = KeywordTally()
        record = project_arrow(self.model, batch, top_k=self.top_k, tally=words)
        # Waited for, so that every batch is counted before the driver reads the tally.
        ray.get(
            self.tally.add.remote(
                table.num_rows, table.num_rows - len(record), len(record), bad, words
            )
        )
        return pa.Table.from_batches([record])


def _filesystem(locations: Sequence[Location]) -> pafs.FileSystem:
    kinds = {type(loc.filesystem).__name__ for loc in locations}
    if len(kinds) != 1:
        raise CatalogError(locations[0].uri, f"inputs on different filesystems ({sorted(kinds)})")
    return locations[0].filesystem


def _dataset(inputs: list[str], format: str | None, columns: Columns, skip_bad_rows: bool) -> Any:
    """The inputs as a Ray dataset with the id, keywords and kept columns.

    Parquet, and CSV and JSONL files with an id column, are read by Ray's own readers, in
    parallel. The rest is read here, on the driver, by the row readers (which check each row,
    name or skip a bad one, and number items that have no id) and handed over: zip archives,
    JSON arrays, files without an id column, and any text file under `skip_bad_rows`.
    """
    import ray.data

    formats = {format or detect_format(p) for p in inputs}
    if len(formats) != 1:
        raise CatalogError(inputs[0], f"mixed formats {sorted(formats)}; project them separately")
    fmt = formats.pop()
    locations = [locate(p) for p in inputs]
    fs = _filesystem(locations)
    paths = [loc.path for loc in locations]
    wanted = [columns.id, columns.keywords, *columns.keep]
    if fmt == "parquet":
        with storage_errors(inputs[0]):
            names = pq.read_schema(paths[0], filesystem=fs).names
        missing = [c for c in wanted if c not in names]
        if missing:
            raise CatalogError(
                inputs[0], f"the ray engine needs the columns {', '.join(map(repr, missing))}"
            )
        return ray.data.read_parquet(paths, filesystem=fs).select_columns(wanted)
    plain = not any(p.lower().endswith((".zip", ".gz")) for p in paths) and not skip_bad_rows
    if plain and fmt == "jsonl" and all(_first_record_has(loc, wanted) for loc in locations):
        # Not `lines=True`: Ray 2.60 refuses a filesystem with it ("`filesystem` is not
        # supported when `lines=True`"); without it, pyarrow's JSON reader reads JSON lines.
        return ray.data.read_json(paths, filesystem=fs).select_columns(wanted)
    if plain and fmt in ("csv", "tmdb") and all(_header_has(loc, wanted) for loc in locations):
        from pyarrow import csv as pacsv

        convert = pacsv.ConvertOptions(
            include_columns=wanted, column_types={c: pa.string() for c in wanted}
        )
        parse = pacsv.ParseOptions(newlines_in_values=True)
        return ray.data.read_csv(paths, filesystem=fs, convert_options=convert, parse_options=parse)
    tables = []
    for path in inputs:
        for batch in iter_catalog_arrow(
            path, format=fmt, skip_bad_rows=skip_bad_rows, columns=columns
        ):
            tables.append(
                pa.table({columns.id: batch.ids, columns.keywords: batch.keywords, **batch.kept})
            )
    if not tables:
        raise CatalogError(inputs[0], "no items")
    return ray.data.from_arrow(tables)


def _first_line(loc: Location) -> bytes:
    with storage_errors(loc.uri):
        with loc.filesystem.open_input_stream(loc.path) as f:
            head = f.read(1 << 16)
    return head.lstrip().split(b"\n", 1)[0]


def _first_record_has(loc: Location, wanted: list[str]) -> bool:
    import json

    try:
        record = json.loads(_first_line(loc))
    except ValueError:
        return False  # the row reader names the bad line
    return isinstance(record, dict) and all(c in record for c in wanted)


def _header_has(loc: Location, wanted: list[str]) -> bool:
    header = _first_line(loc).decode("utf-8-sig", errors="replace")
    delimiter = "\t" if loc.path.lower().endswith(".tsv") else ","
    names = {c.strip().strip('"') for c in header.split(delimiter)}
    return all(c in names for c in wanted)


def check_shared(paths: Sequence[str], output: Location) -> list[str]:
    """Prove that every node of a multi-node cluster sees the local inputs and the local output.

    A local path on a cluster is one path per machine: the inputs must be on a mount every node
    shares, and so must the output, or each node would write its parts to its own disk. Each
    alive node runs a task that looks for the inputs (by size) and for a probe file the driver
    has just written in the output directory. Returns the ids of the alive nodes.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n["NodeID"] for n in ray.nodes() if n["Alive"]]
    local_inputs = [p for p in paths if locate(p).is_local]
    if len(nodes) < 2 or (not local_inputs and not output.is_local):
        return nodes
    probe = None
    if output.is_local:
        os.makedirs(output.path, exist_ok=True)
        probe = os.path.join(output.path, f".probe-{uuid.uuid4().hex}")
        Path(probe).write_text("topicproj")
    wanted = {locate(p).path: locate(p).info().size for p in local_inputs}
    if probe is not None:
        wanted[probe] = len("topicproj")

    def sizes(paths: list[str]) -> list[int]:
        return [os.path.getsize(p) if os.path.isfile(p) else -1 for p in paths]

    look = ray.remote(num_cpus=0)(sizes)
    try:
        seen = ray.get(
            [
                look.options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
                ).remote(list(wanted))
                for node in nodes
            ]
        )
    finally:
        if probe is not None:
            os.unlink(probe)
    for node, found in zip(nodes, seen, strict=True):
        for (path, size), got in zip(wanted.items(), found, strict=True):
            if got != size:
                what = "the output directory" if path == probe else path
                raise StorageError(
                    output.uri if path == probe else path,
                    f"the cluster has {len(nodes)} nodes and node {node[:12]} does not see "
                    f"{what} as this machine does: on a multi-node cluster, inputs and output "
                    "must be on storage every node shares (s3://, gs://, hdfs://, or a shared "
                    "mount)",
                )
    return nodes


def project_with_ray(
    model_dir: str | Path,
    inputs: Sequence[str | Path],
    output: str | Path,
    *,
    format: str | None = None,
    batch_size: int = 8192,
    top_k: int = 0,
    skip_bad_rows: bool = False,
    device: str = "auto",
    address: str | None = None,
    actors: int | None = None,
    gpus_per_actor: float = 0.0,
    columns: Columns = DEFAULT_COLUMNS,
    max_unknown: float | None = MAX_UNKNOWN_SHARE,
) -> ProjectionSummary:
    """Project `inputs` into the Parquet directory `output` (a path or URI) on a Ray cluster.

    `columns` and `max_unknown` are as for the local engine's `project_catalog`."""
    import ray
    import ray.data

    model = TopicModel.load(model_dir, device="cpu")  # fail fast, on the driver, if damaged
    sources = [str(p) for p in inputs]
    out = locate(output)
    directory = OutputDirectory(out)
    # Before Ray starts: a missing file or bucket, or bad credentials, fail in a second.
    for source in sources:
        if not locate(source).exists():
            raise CatalogError(source, "no such file")
    with storage_errors(out.uri):
        out.filesystem.create_dir(out.path, recursive=True)
    address = address or os.environ.get("RAY_ADDRESS") or None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    start = time.perf_counter()
    try:
        nodes = check_shared(sources, out)
        directory.prepare(keep_parts=False)
        ds = _dataset(sources, format, columns, skip_bad_rows)
        resources = ray.cluster_resources()
        if actors is None:
            by_gpu = int(resources.get("GPU", 0) // gpus_per_actor) if gpus_per_actor else 0
            # Leave a CPU for Ray Data's read and write tasks: actors holding every CPU starve
            # them, and the pipeline stalls for good.
            actors = max(1, by_gpu or int(resources.get("CPU", 2)) - 1)
        tally = ray.remote(num_cpus=0)(RowTally).remote()
        projected = ds.map_batches(
            ProjectBatches,
            fn_constructor_kwargs={
                "model_dir": str(Path(model_dir).resolve()),
                "device": device,
                "top_k": top_k,
                "skip_bad_rows": skip_bad_rows,
                "tally": tally,
                "columns": columns,
            },
            batch_format="pyarrow",
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_gpus=gpus_per_actor or None,
            # One model per node before two on one. Ray 2.60 names no parameter for this and
            # warns that this route will go in 2.64; until then it is the only one.
            ray_remote_args_fn=lambda: {"scheduling_strategy": "SPREAD"},
        )
        temporary = directory.temporary
        try:
            with storage_errors(out.uri):
                projected.write_parquet(temporary.path, filesystem=out.filesystem)
        except ray.exceptions.RayTaskError as e:
            # A domain error raised in a task (a bad row) is reported as itself, not as a
            # traceback from the worker.
            if isinstance(e.cause, CatalogError | StorageError):
                raise e.cause from None
            raise
        counts_dict, actor_nodes, keywords = ray.get(tally.result.remote())
        counts = RowCounts.from_dict(counts_dict)
        parts = _commit_parts(directory)
        counts.written = sum(p.rows for p in parts)
        if (format or detect_format(sources[0])) == "parquet":
            _check_read(sources, counts)
        counts.check(out.uri)
        keywords.check(max_unknown, columns.separator)
        details = {
            "engine": "ray",
            "model_version": getattr(model, "version_", "unversioned"),
            "topics": model.n_topics,
            "topic_labels": model.labels(),
            "files": len(sources),
            "inputs": sources,
            "options": {"top_k": top_k, "extras": True, "explain": None},
            "nodes": len(nodes),
            "actor_nodes": actor_nodes,
        }
        directory.finish(parts, counts, details)
    except BaseException:
        with contextlib.suppress(Exception):  # the original error is the one to report
            directory.discard()
        raise
    finally:
        if started_here:
            ray.shutdown()
    return ProjectionSummary(
        counts=counts,
        seconds=time.perf_counter() - start,
        files=len(sources),
        output=out.uri,
        details=details,
        keywords=keywords,
    )


def _commit_parts(directory: OutputDirectory) -> list[Part]:
    """Ray's files under the temporary prefix, renamed `part-NNNNN.parquet` and moved up."""
    fs = directory.fs
    with storage_errors(directory.location.uri):
        infos = fs.get_file_info(pafs.FileSelector(directory.temporary.path, recursive=True))
    written = sorted(i.path for i in infos if i.is_file and i.path.endswith(".parquet"))
    parts = []
    for index, path in enumerate(written):
        name = part_name(index)
        rows = footer_rows(Location(fs, path, path))
        with storage_errors(directory.location.uri):
            fs.move(path, directory.location.child(name).path)
        parts.append(Part(name, rows))
    return parts


def _check_read(sources: list[str], counts: RowCounts) -> None:
    """Parquet inputs say how many rows they hold: the rows the actors saw must be all of them."""
    rows = sum(footer_rows(locate(p)) for p in sources)
    if rows != counts.read:
        counts.read = rows  # reported as the rows the inputs hold, so `check` names the gap
