"""A plain grpc.aio server of topicproj's proto that projects each request on its own, with
no batching: what a team would write in an afternoon. Its health service says SERVING once the
model is loaded, so the load benchmark can wait for it as for the others.

    python -m benchmarks.peers.unbatched_server --model DIR --port PORT
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc
import torch
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from topicproj.models.core.topic_model import TopicModel
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from .compute import project


class Servicer(pb_grpc.TopicProjectionServiceServicer):
    def __init__(self, model: TopicModel) -> None:
        self.model = model

    async def Project(
        self, request: pb.ProjectRequest, context: grpc.aio.ServicerContext
    ) -> pb.ProjectResponse:
        return project(self.model, [request])[0]  # on the event loop: one at a time


async def serve(model_dir: str, port: int) -> None:
    torch.set_num_threads(1)
    model = TopicModel.load(model_dir, device="cpu")
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ]
    )
    pb_grpc.add_TopicProjectionServiceServicer_to_server(Servicer(model), server)
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await checker.set("", health_pb2.HealthCheckResponse.SERVING)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(2)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    asyncio.run(serve(args.model, args.port))


if __name__ == "__main__":
    main()
