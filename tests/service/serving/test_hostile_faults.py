"""Faults against a real server process: a training job dies with its server (kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from topicproj.models.store.registry import ModelRegistry
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from .test_process import REPO, free_port

TOKEN = "faults-token"
AUTH = [("authorization", f"Bearer {TOKEN}")]


def serve_process(model_root: Path, data_root: Path, port: int) -> subprocess.Popen[bytes]:
    env = os.environ | {"TOPICPROJ_AUTH_TOKEN": TOKEN}
    return subprocess.Popen(
        [sys.executable, "-m", "topicproj.service.cli", "serve", "--model-root", str(model_root),
         "--data-root", str(data_root), "--port", str(port), "--no-metrics"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def wait_serving(channel: grpc.Channel, timeout: float = 90.0) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            reply = health.Check(health_pb2.HealthCheckRequest(), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server never reported SERVING")


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` that multiprocessing spawned (the training child)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"spawn_main" in cmdline:
            out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    """Running: not gone, and not a zombie waiting for a reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_kill_9_of_the_server_takes_its_training_child_and_adds_nothing(roots):
    model_root, data_root = roots
    before = {v.version for v in ModelRegistry(model_root).versions()}
    port = free_port()
    server = serve_process(model_root, data_root, port)
    child = None
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        wait_serving(channel)
        api = pb_grpc.TopicProjectionServiceStub(channel)
        options = pb.TrainingOptions(topics=4, min_df=2, max_epochs=400, patience=400)
        job = api.StartTraining(
            pb.StartTrainingRequest(catalog_path="catalog.jsonl", options=options,
                                    from_scratch=True),
            metadata=AUTH, timeout=10,
        ).job  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = api.GetTrainingJob(pb.GetTrainingJobRequest(job_id=job.id), timeout=5).job
            if got.state == pb.TrainingJob.STATE_RUNNING and got.progress.epoch >= 1:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"the job never ran an epoch: {got}")
        (child,) = children(server.pid)
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        deadline = time.monotonic() + 10
        while alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(child), "the training child outlived its server"
        assert {v.version for v in ModelRegistry(model_root).versions()} == before

        # The restarted server tells the job as it ended, and trains nothing meanwhile.
        server = serve_process(model_root, data_root, port)
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        wait_serving(channel)
        api = pb_grpc.TopicProjectionServiceStub(channel)
        jobs = api.ListTrainingJobs(pb.ListTrainingJobsRequest(), timeout=5).jobs
        assert [(j.id, j.state) for j in jobs] == [(job.id, pb.TrainingJob.STATE_FAILED)]
        assert children(server.pid) == []
        assert {v.version for v in ModelRegistry(model_root).versions()} == before
    finally:
        server.kill()
        server.wait(10)
        if child is not None and alive(child):
            os.kill(child, signal.SIGKILL)
