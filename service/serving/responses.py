"""Domain objects to protobuf messages: projections, models, versions, training jobs."""

from __future__ import annotations

from typing import Any

import numpy as np
from google.protobuf import duration_pb2, json_format
from google.protobuf.timestamp_pb2 import Timestamp

from topicproj.models.core.explain import ItemExplanation
from topicproj.models.core.lineage import Lineage
from topicproj.models.core.options import TrainOptions
from topicproj.models.core.ranking import top_topics
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.store.registry import VersionInfo
from topicproj.service.jobs.spec import ENDED, Job, JobState
from topicproj.v1 import topicproj_pb2 as pb

from .holder import Projected


def timestamp(unix_seconds: float) -> Timestamp:
    t = Timestamp()
    t.FromNanoseconds(round(unix_seconds * 1e9))
    return t


def options_message(options: TrainOptions) -> pb.TrainingOptions:
    values = options.to_dict()
    message = pb.TrainingOptions()
    for field, option in TrainOptions.proto_fields().items():
        value = values[option]
        if isinstance(value, tuple | list):  # a repeated field
            getattr(message, field).extend(value)
        elif value is not None:  # max_vocabulary None: no limit, left unset
            setattr(message, field, value)
    return message


def job_message(job: Job) -> pb.TrainingJob:
    message = pb.TrainingJob(
        id=job.id,
        state=int(job.state),
        done=job.state in ENDED,
        progress=pb.TrainingProgress(
            epoch=job.epoch,
            max_epochs=job.max_epochs,
            train_loss=job.train_loss,
            validation_loss=job.validation_loss,
        ),
        options=options_message(job.spec.options),
        create_time=timestamp(job.created),
        update_time=timestamp(job.updated),
        parent_version=job.spec.parent or "",
    )
    if job.state == JobState.SUCCEEDED:
        message.response.model_version = job.model_version
        message.response.activated = job.activated
    elif job.state == JobState.FAILED:
        message.error = job.error
    return message


def lineage_message(lineage: Lineage | None) -> pb.Lineage | None:
    if lineage is None:
        return None
    return pb.Lineage(
        parent_version=lineage.parent or "",
        topic_similarity=lineage.similarity,
        kept_threshold=lineage.threshold,
        kept_topic_count=lineage.kept,
        keywords_added=lineage.keywords_added,
        keywords_dropped=lineage.keywords_dropped,
        added_topic_count=lineage.added_topics,
    )


def traffic_message(report: dict[str, Any]) -> pb.GetTrafficResponse:
    """`TrafficProfiles.report()` as the response; the baseline fields unset without one."""
    age = duration_pb2.Duration()
    age.FromNanoseconds(round(report["window_age_seconds"] * 1e9))
    return pb.GetTrafficResponse(
        version=report["version"],
        has_baseline=report["has_baseline"],
        drift=report["drift"],
        window_items=report["window_items"],
        window_capacity=report["window_capacity"],
        window_age=age,
        items_seen=report["items_seen"],
        unassigned_ratio=report["unassigned_ratio"],
        baseline_unassigned_ratio=report["baseline_unassigned_ratio"],
        unknown_keyword_ratio=report["unknown_keyword_ratio"],
        baseline_unknown_keyword_ratio=report["baseline_unknown_keyword_ratio"],
        topics=[pb.TopicTraffic(**t) for t in report["topics"]],
        moved_topics=report["moved_topics"],
        unknown_keywords=[pb.UnknownKeyword(**u) for u in report["unknown_keywords"]],
        keyword_lengths=report["keyword_lengths"],
        baseline_keyword_lengths=report["baseline_keyword_lengths"] or [],
    )


def model_message(model: TopicModel, top_keywords: int) -> pb.Model:
    labels, own = model.labels(), model.label_overrides_
    return pb.Model(
        version=model.version_,
        topic_count=model.n_topics,
        vocabulary_size=len(model.vocabulary_),
        activation=model.activation,
        device=str(model.device_),
        topics=[
            pb.Topic(
                index=row["topic"],
                top_keywords=row["top_keywords"],
                slope=row["slope"],
                threshold=row["threshold"],
                sharpness=row["sharpness"],
                bias=row["bias"],
                label=labels[row["topic"]],
                label_set=row["topic"] in own,
            )
            for row in model.topic_table(top_keywords)
        ],
        lineage=lineage_message(model.lineage_),
    )


def version_message(version: VersionInfo, serving: str) -> pb.ModelVersion:
    return pb.ModelVersion(
        version=version.version,
        create_time=timestamp(version.created),
        active=version.active,
        serving=version.version == serving,
        lineage=lineage_message(version.lineage),
    )


def explanation_message(explanation: ItemExplanation) -> pb.Explanation:
    # One schema: the offline column and this message are the same dict (`to_dict`), which
    # ParseDict refuses if it ever names a field the contract lacks.
    return json_format.ParseDict(explanation.to_dict(), pb.Explanation())


def build_response(request: pb.ProjectRequest, projected: Projected) -> pb.ProjectResponse:
    """The response for one request: columns, or one message per item built in bulk."""
    Y = projected.Y
    n = len(Y)
    response = pb.ProjectResponse(model_version=projected.version, topic_count=Y.shape[1])
    active = np.count_nonzero(Y > 0, axis=1)
    top_k = int(request.top_k)
    if top_k and n:
        topics, scores, counts = top_topics(Y, top_k)
    if request.response_form == pb.RESPONSE_FORM_COLUMNS:
        columns = response.columns
        columns.SetInParent()  # an empty request still answers in the form it asked for
        columns.known_keywords.extend(projected.known.tolist())
        columns.unknown_keywords.extend(projected.unknown.tolist())
        columns.active_topics.extend(active.tolist())
        if top_k and n:
            columns.top_counts.extend(counts.tolist())
            columns.top_topics.extend(topics.tolist())
            columns.top_scores.extend(scores.tolist())
            if projected.labels is not None:
                labels = projected.labels
                columns.top_labels.extend(map(labels.__getitem__, topics.tolist()))
        if not request.omit_topics and n:
            columns.topics = np.ascontiguousarray(Y, dtype="<f4").tobytes()
        if projected.explanations is not None:
            columns.explanations.extend(map(explanation_message, projected.explanations))
        return response
    response.projection_list.SetInParent()
    rows = response.projection_list.projections
    if request.WhichOneof("input") == "packed":
        ids = list(request.packed.ids) or [""] * n
    else:
        ids = [item.id for item in request.item_list.items]
    add = rows.add  # in place: constructing and appending copies each
    for i, k, u, a in zip(
        ids, projected.known.tolist(), projected.unknown.tolist(), active.tolist(), strict=True
    ):
        add(id=i, known_keywords=k, unknown_keywords=u, active_topics=a)
    if not request.omit_topics:
        for p, row in zip(rows, Y.tolist(), strict=True):
            p.topics.extend(row)
    if top_k and n:
        bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
        topics_l, scores_l = topics.tolist(), scores.tolist()
        labels = projected.labels or [""] * Y.shape[1]
        for i, p in enumerate(rows):
            add_top = p.top.add
            for j in range(bounds[i], bounds[i + 1]):
                add_top(topic=topics_l[j], score=scores_l[j], label=labels[topics_l[j]])
    if projected.explanations is not None:
        for p, explanation in zip(rows, projected.explanations, strict=True):
            p.explanation.CopyFrom(explanation_message(explanation))
    return response
