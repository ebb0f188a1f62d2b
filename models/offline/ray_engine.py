"""The Ray Data engine for offline projection, for catalogs one machine cannot project in time.

Ray Data reads the catalog, an actor pool runs `ProjectBatches` (each actor loads the model once
and calls the same `project_arrow` as the local engine), and the result is written as a directory
of Parquet files. It joins the cluster named by `address` or `RAY_ADDRESS`, and otherwise starts
a local Ray instance. `ray` is imported only here: install it with `pip install topicproj[ray]`.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from models.core.topic_model import TopicModel
from models.data.catalog import (
    ArrowBatch,
    CatalogError,
    ReadStats,
    detect_format,
    iter_catalog_arrow,
    keywords_column,
)

from .projection import ProjectionSummary, project_arrow


class ProjectBatches:
    """A Ray Data callable class: loads the model once per actor, projects Arrow batches."""

    def __init__(self, model_dir: str, device: str, top_k: int, skip_bad_rows: bool) -> None:
        self.model = TopicModel.load(model_dir, device=device)
        self.top_k = top_k
        self.skip_bad_rows = skip_bad_rows

    def __call__(self, table: pa.Table) -> pa.Table:
        keywords, kept = keywords_column(
            table.column("keywords"), "ray input", skip_bad_rows=self.skip_bad_rows
        )
        ids = pc.fill_null(pc.cast(table.column("id").combine_chunks(), pa.string()), "")
        if kept is not None:
            ids = ids.filter(pa.array(kept))
            keywords = keywords.filter(pa.array(kept))
        record = project_arrow(self.model, ArrowBatch(ids, keywords), top_k=self.top_k)
        return pa.Table.from_batches([record])


def _dataset(inputs: list[Path], format: str | None) -> Any:
    import ray.data

    formats = {format or detect_format(p) for p in inputs}
    if len(formats) != 1:
        raise CatalogError(inputs[0], f"mixed formats {sorted(formats)}; project them separately")
    fmt = formats.pop()
    paths = [str(p) for p in inputs]
    zipped = any(p.suffix.lower() == ".zip" for p in inputs)
    if fmt == "parquet":
        names = pq.read_schema(paths[0]).names
        if "keywords" not in names or "id" not in names:
            raise CatalogError(paths[0], "the ray engine needs 'id' and 'keywords' columns")
        return ray.data.read_parquet(paths).select_columns(["id", "keywords"])
    if fmt == "jsonl" and not zipped:
        return ray.data.read_json(paths, lines=True).select_columns(["id", "keywords"])
    if fmt in ("csv", "tmdb") and not zipped:
        from pyarrow import csv as pacsv

        convert = pacsv.ConvertOptions(
            include_columns=["id", "keywords"],
            column_types={"id": pa.string(), "keywords": pa.string()},
        )
        parse = pacsv.ParseOptions(newlines_in_values=True)
        return ray.data.read_csv(paths, convert_options=convert, parse_options=parse)
    # Zip archives have no Ray reader: they are read here, on the driver, and handed over.
    tables = []
    for path in inputs:
        for batch in iter_catalog_arrow(path, format=fmt):
            tables.append(pa.table({"id": batch.ids, "keywords": batch.keywords}))
    return ray.data.from_arrow(tables)


def project_with_ray(
    model_dir: str | Path,
    inputs: list[Path],
    output: Path,
    *,
    format: str | None = None,
    batch_size: int = 8192,
    top_k: int = 0,
    skip_bad_rows: bool = False,
    device: str = "auto",
    address: str | None = None,
    actors: int | None = None,
    gpus_per_actor: float = 0.0,
) -> ProjectionSummary:
    """Project `inputs` into the Parquet directory `output` on a Ray cluster."""
    import ray
    import ray.data

    TopicModel.load(model_dir, device="cpu")  # fail fast, on the driver, on a damaged model
    address = address or os.environ.get("RAY_ADDRESS")
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    start = time.perf_counter()
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        ds = _dataset(inputs, format)
        resources = ray.cluster_resources()
        if actors is None:
            by_gpu = int(resources.get("GPU", 0) // gpus_per_actor) if gpus_per_actor else 0
            # Leave a CPU for Ray Data's read and write tasks: actors holding every CPU starve
            # them, and the pipeline stalls for good.
            actors = max(1, by_gpu or int(resources.get("CPU", 2)) - 1)
        projected = ds.map_batches(
            ProjectBatches,
            fn_constructor_kwargs={
                "model_dir": str(Path(model_dir).resolve()),
                "device": device,
                "top_k": top_k,
                "skip_bad_rows": skip_bad_rows,
            },
            batch_format="pyarrow",
            batch_size=batch_size,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_gpus=gpus_per_actor or None,
        )
        shutil.rmtree(tmp, ignore_errors=True)
        projected.write_parquet(str(tmp))
        items = sum(pq.ParquetFile(p).metadata.num_rows for p in tmp.glob("*.parquet"))
        if output.is_dir():
            shutil.rmtree(output)
        elif output.exists():
            output.unlink()
        os.replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
    read_rows = sum(_row_count(p, format) for p in inputs) if skip_bad_rows else items
    return ProjectionSummary(
        items=items,
        seconds=time.perf_counter() - start,
        skipped=read_rows - items,
        files=len(inputs),
        output=output,
    )


def _row_count(path: Path, format: str | None) -> int:
    """Rows in an input file, bad ones included."""
    fmt = format or detect_format(path)
    if fmt == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    stats = ReadStats()
    for _ in iter_catalog_arrow(path, format=fmt, skip_bad_rows=True, stats=stats):
        pass
    return stats.rows + stats.skipped
