"""`topicproj serve --workers 2` as real processes: one port, two servers, metrics from both."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[3]
READY = re.compile(
    r"serving model (\w+) on 127\.0\.0\.1:(\d+) with 2 workers \(pids (\d+), (\d+)\), "
    r"metrics on :(\d+), :(\d+)"
)


class Workers:
    def __init__(self, model_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "topicproj.service.cli",
                "serve",
                "--model",
                str(model_dir),
                "--workers",
                "2",
                "--port",
                "0",
                "--metrics-port",
                "0",
                "--grace-seconds",
                "2",
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        deadline = time.monotonic() + 120
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError("supervisor exited before serving:\n" + "".join(self.lines))
            self.lines.append(line)
            if m := READY.search(line):
                self.version = m.group(1)
                self.port = int(m.group(2))
                self.pids = [int(m.group(3)), int(m.group(4))]
                self.metrics_ports = [int(m.group(5)), int(m.group(6))]
                return
        raise AssertionError("no ready line:\n" + "".join(self.lines))

    @property
    def model(self) -> str:
        args = self.proc.args
        assert isinstance(args, list)
        return str(args[args.index("--model") + 1])

    def rest(self) -> str:
        out = self.proc.communicate(timeout=60)[0]
        return "".join(self.lines) + out


@pytest.fixture
def workers(model_dir: Path) -> Iterator[Workers]:
    w = Workers(model_dir)
    yield w
    if w.proc.poll() is None:  # a failed test: stop it all, workers included
        w.proc.send_signal(signal.SIGTERM)
        try:
            w.proc.wait(30)
        except subprocess.TimeoutExpired:
            w.proc.kill()
    for pid in w.pids:
        if not gone(pid):
            os.kill(pid, signal.SIGKILL)
    w.proc.communicate(timeout=30)


def gone(pid: int) -> bool:
    """Exited: no such process, or a zombie waiting for its (new) parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"


def wait_gone(pids: list[int], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not all(gone(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def ok_requests(port: int) -> float:
    total = 0.0
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        for family in text_string_to_metric_families(r.read().decode()):
            for sample in family.samples:
                if sample.name == "topicproj_requests_total" and sample.labels == {
                    "rpc": "Project",
                    "code": "OK",
                }:
                    total += sample.value
    return total


def test_two_workers_share_the_port_and_each_exports_its_metrics(workers, catalog_items, model):
    request = pb.ProjectRequest(
        item_list=pb.ItemList(items=[pb.Item(keywords=k) for k in catalog_items[:4]])
    )
    # The kernel spreads connections, not calls: many connections reach both workers (with
    # 16 of them the chance that all land on one worker is 2 in 65,536).
    options = [("grpc.use_local_subchannel_pool", 1)]
    channels = [
        grpc.insecure_channel(f"127.0.0.1:{workers.port}", options=options) for _ in range(16)
    ]
    try:
        for channel in channels:
            stub = pb_grpc.TopicProjectionServiceStub(channel)
            for _ in range(4):
                response = stub.Project(request, timeout=10)
                assert response.model_version == model.version_ == workers.version
                assert len(response.projection_list.projections) == 4
    finally:
        for channel in channels:
            channel.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # RPC metrics land just after the status is sent
        counts = [ok_requests(p) for p in workers.metrics_ports]
        if sum(counts) == 64:
            break
        time.sleep(0.05)
    assert sum(counts) == 64 and min(counts) > 0, counts

    # A second server cannot take the port by accident: only --workers shares it.
    single = subprocess.run(
        [
            *(sys.executable, "-m", "topicproj.service.cli", "serve", "--model", workers.model),
            *("--port", str(workers.port), "--no-metrics"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert single.returncode == 2 and "cannot listen" in single.stderr, single.stderr[-2000:]

    workers.proc.send_signal(signal.SIGTERM)
    assert workers.proc.wait(timeout=60) == 0
    assert workers.rest().count("stopped") == 2
    assert wait_gone(workers.pids)


def test_workers_stop_when_their_supervisor_is_killed(workers):
    workers.proc.kill()
    workers.proc.wait(10)
    assert wait_gone(workers.pids)


def test_a_dead_worker_stops_the_server_with_an_error(workers):
    os.kill(workers.pids[0], signal.SIGKILL)
    assert workers.proc.wait(timeout=60) == 1
    assert "exited with status -9; stopping the others" in workers.rest()
    assert wait_gone(workers.pids)
