"""A training job on the server while it is measured (the 'training' server)."""

from __future__ import annotations

from pathlib import Path

import grpc

from topicproj.v1 import topicproj_pb2 as pb

from .scenarios import SERVICE
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
            f"/{SERVICE}/StartTraining",
            request_serializer=pb.StartTrainingRequest.SerializeToString,
            response_deserializer=pb.StartTrainingResponse.FromString,
        )
        # From scratch: the served model has its own topic count, which a child would keep.
        request = pb.StartTrainingRequest(
            catalog_path=TRAINING_CATALOG,
            options=pb.TrainingOptions(topics=TRAINING_TOPICS),
            from_scratch=True,
        )
        job = (await start(request, timeout=10.0)).job
    return str(job.id)


async def end_training(address: str, job_id: str) -> str:
    """Cancel the job; what it was doing at the end of the window, for the notes."""
    async with grpc.aio.insecure_channel(address) as channel:
        cancel = channel.unary_unary(
            f"/{SERVICE}/CancelTrainingJob",
            request_serializer=pb.CancelTrainingJobRequest.SerializeToString,
            response_deserializer=pb.CancelTrainingJobResponse.FromString,
        )
        job = (await cancel(pb.CancelTrainingJobRequest(job_id=job_id), timeout=10.0)).job
    state = pb.TrainingJob.State.Name(job.state).removeprefix("STATE_")
    return (
        f"the training job ({TRAINING_TOPICS} topics on the keyword pool) was {state} at the "
        f"end of the window, at epoch {job.progress.epoch}"
        + ("" if state == "RUNNING" else "; it did not train through the whole window")
    )
