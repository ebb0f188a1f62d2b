"""A training job on the server while it is measured (the 'training' server)."""

from __future__ import annotations

from pathlib import Path

import grpc

from topicproj.v1 import topicproj_pb2 as pb

from .workload import Pool

TRAINING_CATALOG = "training-catalog.jsonl"
TRAINING_TOPICS = 50


def write_training_catalog(pool: Pool, path: Path) -> None:
    import json

    with open(path, "w", encoding="utf-8") as f:
        for i, keywords in enumerate(pool.keywords):
            f.write(json.dumps({"id": str(i), "keywords": keywords}) + "\n")


async def start_training(address: str) -> str:
    """Start a job on the pool's items (the server's data root holds them); its id."""
    async with grpc.aio.insecure_channel(address) as channel:
        start = channel.unary_unary(
            "/topicproj.v1.TopicProjection/StartTraining",
            request_serializer=pb.TrainRequest.SerializeToString,
            response_deserializer=pb.TrainingJob.FromString,
        )
        request = pb.TrainRequest(catalog_path=TRAINING_CATALOG, topics=TRAINING_TOPICS)
        job = await start(request, timeout=10.0)
    return str(job.id)


async def end_training(address: str, job_id: str) -> str:
    """Cancel the job; what it was doing at the end of the window, for the notes."""
    async with grpc.aio.insecure_channel(address) as channel:
        cancel = channel.unary_unary(
            "/topicproj.v1.TopicProjection/CancelTrainingJob",
            request_serializer=pb.TrainingJobRequest.SerializeToString,
            response_deserializer=pb.TrainingJob.FromString,
        )
        job = await cancel(pb.TrainingJobRequest(job_id=job_id), timeout=10.0)
    state = pb.TrainingJob.State.Name(job.state)
    return (
        f"the training job ({TRAINING_TOPICS} topics on the keyword pool) was {state} at the "
        f"end of the window, at epoch {job.epoch}"
        + ("" if state == "RUNNING" else "; it did not train through the whole window")
    )
