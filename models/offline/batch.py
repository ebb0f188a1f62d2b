"""One batch of items projected into the output's columns: the function both engines call.

`project_arrow` maps a batch's keywords, runs the model and builds the record batch of
`output_schema`: ids, the dense topics, and optionally the top-k topics, keyword counts and
explanations. The local engine calls it in a loop, the Ray engine inside `map_batches`.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from topicproj.models.core.explain import explain_batch
from topicproj.models.core.ranking import top_topics
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.data.arrow_catalog import ArrowBatch

from .unknown import KeywordTally

METADATA_VERSION = b"topicproj.model_version"
METADATA_TOPICS = b"topicproj.topics"
METADATA_LABELS = b"topicproj.topic_labels"  # JSON list, topic order


def output_schema(
    model: TopicModel,
    top_k: int,
    extras: bool,
    explain: int | None = None,
    keep: tuple[str, ...] = (),
) -> pa.Schema:
    fields = [pa.field("id", pa.string())]
    # Columns passed through from the input, as text: one type whatever the input's format.
    fields += [pa.field(name, pa.string()) for name in keep]
    fields.append(pa.field("topics", pa.list_(pa.float32(), model.n_topics)))
    if top_k:
        fields += [
            pa.field("top_k_topics", pa.list_(pa.int32())),
            pa.field("top_k_scores", pa.list_(pa.float32())),
        ]
    if extras:
        fields += [
            pa.field("known_keywords", pa.int32()),
            pa.field("unknown_keywords", pa.int32()),
            pa.field("active_topics", pa.int32()),
        ]
    if explain is not None:  # JSON per item: any reader (Spark, DuckDB, pandas) can take it
        fields.append(pa.field("explanation", pa.string()))
    metadata = {
        METADATA_VERSION: getattr(model, "version_", "unversioned").encode(),
        METADATA_TOPICS: str(model.n_topics).encode(),
        METADATA_LABELS: json.dumps(model.labels(), ensure_ascii=False).encode(),
    }
    return pa.schema(fields, metadata=metadata)


def project_arrow(
    model: TopicModel,
    batch: ArrowBatch,
    *,
    top_k: int = 0,
    extras: bool = True,
    explain: int | None = None,
    tally: KeywordTally | None = None,
) -> pa.RecordBatch:
    """Project one batch of items; a record batch with the `output_schema` columns (the
    batch's kept columns after the id). `tally`, when given, counts the unknown keywords."""
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0, got {top_k}")
    sparse = model.vocabulary_.map_batch(batch.keywords)
    if tally is not None:
        tally.add_batch(model.vocabulary_, batch.keywords, int(sparse.unknown.sum()))
    Y = model.project_batch(sparse).cpu().numpy()  # (items, topics) float32
    n, k = Y.shape
    columns: list[pa.Array] = [
        batch.ids,
        *batch.kept.values(),
        pa.FixedSizeListArray.from_arrays(pa.array(Y.reshape(-1)), k),
    ]
    if top_k:
        topics, scores, counts = top_topics(Y, top_k)
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(counts, out=offsets[1:])
        columns += [
            pa.ListArray.from_arrays(pa.array(offsets), pa.array(topics)),
            pa.ListArray.from_arrays(pa.array(offsets), pa.array(scores)),
        ]
    if extras:
        columns += [
            pa.array(sparse.known.astype(np.int32)),
            pa.array(sparse.unknown.astype(np.int32)),
            pa.array((Y > 0).sum(axis=1).astype(np.int32)),
        ]
    if explain is not None:
        explained = explain_batch(model.projector_, sparse, model.vocabulary_.keywords, explain)
        # The proto's `Explanation` in its JSON mapping: the same shape as the client's.
        text = [json.dumps(e.to_dict(), ensure_ascii=False) for e in explained]
        columns.append(pa.array(text, pa.string()))
    schema = output_schema(model, top_k, extras, explain, tuple(batch.kept))
    return pa.RecordBatch.from_arrays(columns, schema=schema)
