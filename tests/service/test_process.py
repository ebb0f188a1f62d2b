"""`topicproj serve` as a real process: health from the CLI, SIGTERM with a request in flight."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc

from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def topicproj(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def wait_serving(address: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if topicproj("health", "--address", address, "--timeout", "1").returncode == 0:
            return
        time.sleep(0.3)
    raise AssertionError(f"{address} never reported SERVING")


def test_sigterm_finishes_in_flight_requests_and_exits_zero(model_dir, catalog_items):
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = os.environ | {
        "TOPICPROJ_MAX_WAIT_MS": "700",
        "TOPICPROJ_MAX_BATCH_ITEMS": "1000",
        "TOPICPROJ_WAIT_WHEN_IDLE": "true",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--model",
            str(model_dir),
            "--port",
            str(port),
            "--no-metrics",
            "--grace-seconds",
            "5",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        unhealthy = topicproj("health", "--address", f"127.0.0.1:{free_port()}", "--timeout", "1")
        assert unhealthy.returncode == 1  # nothing listening there
        wait_serving(address)
        channel = grpc.insecure_channel(address)
        in_flight = pb_grpc.TopicProjectionStub(channel).Project.future(
            pb.ProjectRequest(items=[pb.Item(keywords=k) for k in catalog_items[:3]]), timeout=10
        )
        time.sleep(0.2)  # queued: the environment set a 700 ms batch window
        proc.send_signal(signal.SIGTERM)
        response = in_flight.result()
        assert len(response.projections) == 3
        assert proc.wait(timeout=30) == 0
        assert topicproj("health", "--address", address, "--timeout", "1").returncode == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        output = proc.communicate()[0]
    assert "serving model" in output and "stopped" in output


def test_serve_rejects_bad_settings_with_a_clear_error():
    result = topicproj("serve", "--max-batch-items", "0", "--no-metrics")
    assert result.returncode == 2
    assert "max_batch_items" in result.stderr and "greater than or equal to 1" in result.stderr
