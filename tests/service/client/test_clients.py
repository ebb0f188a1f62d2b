"""The client as another team installs it, and its retries against a server that refuses."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from topicproj.service.client import TopicClient
from topicproj.service.client.channel import ChannelSettings, RetryPolicy
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[3]
CLIENT_PYTHON = os.environ.get("TOPICPROJ_CLIENT_PYTHON")
if CLIENT_PYTHON:  # run from a temporary folder below
    CLIENT_PYTHON = os.path.abspath(CLIENT_PYTHON)

SLIM_SCRIPT = r"""
import importlib.util, json, sys
heavy = [m for m in ("torch", "sklearn", "scipy", "pyarrow") if importlib.util.find_spec(m)]
import topicproj
from topicproj import TopicClient
with TopicClient(sys.argv[1]) as client:
    result = client.project(json.loads(sys.argv[2]), top_k=2)
    model = client.get_model(top_keywords=3)
print(json.dumps({"heavy": heavy, "module": topicproj.__file__,
                  "topics": result.topics.tolist(), "version": result.model_version,
                  "topic_count": model["topic_count"]}))
"""


@pytest.mark.skipif(not CLIENT_PYTHON, reason="TOPICPROJ_CLIENT_PYTHON unset (make test sets it)")
def test_the_client_alone_installs_without_torch_and_works(server, model, catalog_items, tmp_path):
    """`pip install topicproj` (no extra) in a fresh virtual environment: `make test` builds it."""
    items = catalog_items[:25]
    result = subprocess.run(
        [CLIENT_PYTHON, "-c", SLIM_SCRIPT, server.address, json.dumps(items)],
        cwd=tmp_path,  # the installed copy, not this checkout
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["heavy"] == []  # no torch, scikit-learn, scipy or pyarrow
    assert "site-packages" in out["module"]  # the installed wheel, not this checkout
    assert out["version"] == model.version_ and out["topic_count"] == model.n_topics
    np.testing.assert_allclose(out["topics"], model.transform(items), rtol=1e-6, atol=1e-7)
    def client_cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(Path(CLIENT_PYTHON).parent / "topicproj"), *args]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=60)

    server_command = client_cli("train", "--output", "m")
    assert server_command.returncode == 2
    assert "pip install 'topicproj[server]'" in server_command.stderr
    lab_command = client_cli("evaluate", "--output", "r")  # the lab is not in the wheel: it says so
    assert lab_command.returncode == 2
    assert "not installed with the package" in lab_command.stderr


OWNED_SCRIPT = r"""
import json, sys
from importlib.metadata import distribution
dist = distribution("topicproj")
print(json.dumps({"top_level": dist.read_text("top_level.txt").split(),
                  "files": [str(f) for f in dist.files]}))
for name in ("models", "service", "proto", "lab"):
    try:
        __import__(name)
    except ModuleNotFoundError:
        continue
    sys.exit(f"`import {name}` found something: the wheel must not own that name")
"""


@pytest.mark.skipif(not CLIENT_PYTHON, reason="TOPICPROJ_CLIENT_PYTHON unset (make test sets it)")
def test_the_installed_wheel_owns_only_the_topicproj_name(tmp_path):
    """A user's own `models` or `service` package must never meet ours in site-packages."""
    result = subprocess.run(
        [CLIENT_PYTHON, "-c", OWNED_SCRIPT], cwd=tmp_path, capture_output=True, text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["top_level"] == ["topicproj"]
    tops = {Path(f).parts[0] for f in out["files"] if not f.startswith("..")}  # ../bin: scripts
    assert tops == {"topicproj", "topicproj-0.1.0.dist-info"}, tops
    # The lab's code (a `lab` or `research` package) stays in the checkout; the CLI module that
    # loads it from there (service/cli/research.py) is installed.
    lab = [f for f in out["files"] if {"lab", "research"} & set(Path(f).parts[:-1])]
    assert not lab, lab


def test_a_refused_call_is_retried_after_the_delay_the_server_asks_for(serve, catalog_items):
    """The queue is full for 0.6 s; the server asks for 250 ms; the client's retry policy
    tries again after each delay and gets through, while a client without retries fails.

    The client's own backoff is set to 10-20 ms: its five attempts would all land inside the
    0.6 s on their own, so getting through shows that it waited as the server asked."""
    server = serve(
        max_queue_items=4,
        max_items_per_request=4,
        max_batch_items=1000,
        max_wait_ms=600,
        wait_when_idle=True,
        retry_delay_ms=250,
    )
    bare = pb_grpc.TopicProjectionServiceStub(grpc.insecure_channel(server.address))
    filler = pb.ProjectRequest(
        item_list=pb.ItemList(items=[pb.Item(keywords=k) for k in catalog_items[:4]])
    )
    waiting = bare.Project.future(filler, timeout=10)  # holds the whole queue for 0.6 s
    time.sleep(0.1)
    no_retries = ChannelSettings(retry=None)
    with TopicClient(server.address, channel_settings=no_retries) as impatient:
        with pytest.raises(grpc.RpcError) as e:
            impatient.project([catalog_items[5]])
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    start = time.monotonic()
    quick = ChannelSettings(retry=RetryPolicy(initial_backoff_s=0.01, max_backoff_s=0.02))
    with TopicClient(server.address, channel_settings=quick) as client:
        got = client.project([catalog_items[5]])
    waited = time.monotonic() - start
    assert got.topics.shape[0] == 1
    assert waiting.result().projection_list.projections  # the queued request completed too
    refused = server.metric(
        "topicproj_requests_total", {"rpc": "Project", "code": "RESOURCE_EXHAUSTED"}
    )
    assert refused >= 2  # the impatient client's, and at least one of the retried call's
    assert waited >= 0.2  # it waited as asked, not at once


def test_retry_policy_is_the_channels_service_config():
    config = json.loads(RetryPolicy(max_attempts=3, initial_backoff_s=0.5).service_config())
    [method] = config["methodConfig"]
    assert method["retryPolicy"]["maxAttempts"] == 3
    assert method["retryPolicy"]["initialBackoff"] == "0.5s"
    assert set(method["retryPolicy"]["retryableStatusCodes"]) == {
        "UNAVAILABLE",
        "RESOURCE_EXHAUSTED",
        "CANCELLED",
    }
    names = {n["method"] for n in method["name"]}
    assert "Project" in names and "StartTraining" not in names  # no double-submitted jobs
    options = dict(ChannelSettings(keepalive_time_s=12).options())
    assert options["grpc.keepalive_time_ms"] == 12000 and options["grpc.enable_retries"] == 1
