"""Domain objects to protobuf messages: projections, model descriptions, training jobs."""

from __future__ import annotations

import numpy as np

from models.core.ranking import top_topics
from models.core.topic_model import TopicModel
from service.jobs.queue import Job
from topicproj.v1 import topicproj_pb2 as pb

from .holder import Projected


def job_message(job: Job) -> pb.TrainingJob:
    return pb.TrainingJob(
        id=job.id,
        state=int(job.state),
        epoch=job.epoch,
        max_epochs=job.max_epochs,
        train_loss=job.train_loss,
        validation_loss=job.validation_loss,
        error=job.error,
        model_version=job.model_version,
        activated=job.activated,
        created_unix=job.created,
    )


def model_info(model: TopicModel, top_keywords: int) -> pb.ModelInfo:
    return pb.ModelInfo(
        version=model.version_,
        topics=model.n_topics,
        vocabulary_size=len(model.vocabulary_),
        activation=model.activation,
        device=str(model.device_),
        topic_info=[pb.TopicInfo(**row) for row in model.topic_table(top_keywords)],
    )


def build_response(request: pb.ProjectRequest, projected: Projected) -> pb.ProjectResponse:
    """The response for one request: columns, or one message per item built in bulk."""
    Y = projected.Y
    n = len(Y)
    response = pb.ProjectResponse(model_version=projected.version)
    active = np.count_nonzero(Y > 0, axis=1)
    if request.top_k and n:
        topics, scores, counts = top_topics(Y, int(request.top_k))
    if request.columnar:
        response.known_keywords.extend(projected.known.tolist())
        response.unknown_keywords.extend(projected.unknown.tolist())
        response.active_topics.extend(active.tolist())
        if request.top_k and n:
            response.top_counts.extend(counts.tolist())
            response.top_topics.extend(topics.tolist())
            response.top_scores.extend(scores.tolist())
    else:
        ids = [item.id for item in request.items] or [""] * n  # packed items have no ids
        add = response.projections.add  # in place: constructing and appending copies each
        for i, k, u, a in zip(
            ids, projected.known.tolist(), projected.unknown.tolist(), active.tolist(), strict=True
        ):
            add(id=i, known_keywords=k, unknown_keywords=u, active_topics=a)
        rows = response.projections
        if not request.omit_dense and not request.dense_bytes:
            for p, row in zip(rows, Y.tolist(), strict=True):
                p.topics.extend(row)
        if request.top_k and n:
            bounds = np.concatenate([[0], np.cumsum(counts)]).tolist()
            topics_l, scores_l = topics.tolist(), scores.tolist()
            for i, p in enumerate(rows):
                add_top = p.top.add
                for j in range(bounds[i], bounds[i + 1]):
                    add_top(topic=topics_l[j], score=scores_l[j])
    if (request.dense_bytes or request.columnar) and not request.omit_dense and n:
        response.dense = np.ascontiguousarray(Y, dtype="<f4").tobytes()
        response.topics = Y.shape[1]
    return response
