"""Ray Serve: the same model behind Ray Serve's gRPC ingress, batched with `@serve.batch`, as
Ray's documentation sets it up: one deployment whose method `Project` answers the gRPC method
of the same name, `max_ongoing_requests` above the batch size so that a batch can fill, and the
batch size counted in items (`batch_size_fn`) like topicproj's `max_batch_items`.

    python -m benchmarks.peers.ray_serve_app --model DIR --port PORT [--max-batch-items 256]

It starts a local Ray (the driver, GCS, raylet, the Serve controller, the gRPC proxy and the
replica, all on this machine's cores), prints "ready" when the application is up, and shuts
Ray down on SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import threading

from ray import serve

from topicproj.v1 import topicproj_pb2 as pb

from .compute import items_of, project

SERVICER = "topicproj.v1.topicproj_pb2_grpc.add_TopicProjectionServiceServicer_to_server"


@serve.deployment(max_ongoing_requests=1024, ray_actor_options={"num_cpus": 0})
class Topicproj:
    def __init__(self, model_dir: str, max_batch_items: int, wait_ms: float) -> None:
        import torch

        from topicproj.models.core.topic_model import TopicModel

        torch.set_num_threads(1)
        self.model = TopicModel.load(model_dir, device="cpu")
        self.project_batch.set_max_batch_size(max_batch_items)
        self.project_batch.set_batch_wait_timeout_s(wait_ms / 1000.0)

    async def Project(self, request: pb.ProjectRequest) -> pb.ProjectResponse:
        return await self.project_batch(request)

    @serve.batch(
        max_batch_size=256,
        batch_wait_timeout_s=0.002,
        batch_size_fn=lambda rs: sum(items_of(r) for r in rs),
    )
    async def project_batch(self, requests: list[pb.ProjectRequest]) -> list[pb.ProjectResponse]:
        return project(self.model, requests)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    import ray
    from ray.serve.config import gRPCOptions

    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--max-batch-items", type=int, default=256)
    p.add_argument("--max-wait-ms", type=float, default=2.0)
    args = p.parse_args()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    serve.start(
        http_options={"host": "127.0.0.1", "port": free_port()},
        grpc_options=gRPCOptions(port=args.port, grpc_servicer_functions=[SERVICER]),
    )
    app = Topicproj.bind(os.path.abspath(args.model), args.max_batch_items, args.max_wait_ms)
    serve.run(app, name="topicproj", blocking=False)
    print("ready", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
