"""The ceiling for Python gRPC here: a `grpc.aio` server of the same proto that does nothing.

`Project` parses the request (grpc does that before the handler runs) and answers an empty
`ProjectResponse`. Whatever requests/s this reaches on a machine, with the same load generator,
is the most any Python handler of this contract could reach there; `benchmarks.load` runs it in
the same run as the real server and reports the real one as a share of it.

    python -m benchmarks.noop_server --port 50052
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

EMPTY = pb.ProjectResponse()


class NoopServicer(pb_grpc.TopicProjectionServiceServicer):
    async def Project(
        self, request: pb.ProjectRequest, context: grpc.aio.ServicerContext
    ) -> pb.ProjectResponse:
        return EMPTY

    async def GetModel(
        self, request: pb.GetModelRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetModelResponse:
        return pb.GetModelResponse(model=pb.Model(version="noop", activation="none", device="none"))


async def serve(host: str, port: int, max_message_bytes: int) -> None:
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]
    server = grpc.aio.server(options=options)
    pb_grpc.add_TopicProjectionServiceServicer_to_server(NoopServicer(), server)
    checker = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    await checker.set("", health_pb2.HealthCheckResponse.SERVING)
    print(f"noop server on {host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.noop_server", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=50052)
    p.add_argument("--max-message-bytes", type=int, default=64 * 1024 * 1024)
    args = p.parse_args()
    asyncio.run(serve(args.host, args.port, args.max_message_bytes))


if __name__ == "__main__":
    main()
