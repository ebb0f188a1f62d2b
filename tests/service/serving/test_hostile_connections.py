"""Connections, tokens and streams under attack, against a real server."""

from __future__ import annotations

import logging
import threading
import time

import grpc
import pytest

from topicproj.models.core.options import TrainOptions
from topicproj.service.client import TopicClient
from topicproj.service.jobs.queue import TrainingJobs
from topicproj.service.jobs.spec import Job, JobState, TrainSpec
from topicproj.service.serving.server import exposure_warnings
from topicproj.service.settings import Settings
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

TOKEN = "Secret-Token"


def stub(address: str) -> pb_grpc.TopicProjectionServiceStub:
    return pb_grpc.TopicProjectionServiceStub(grpc.insecure_channel(address))


def get_model(address: str, metadata: list[tuple[str, str]]) -> grpc.StatusCode:
    try:
        stub(address).GetModel(pb.GetModelRequest(), metadata=metadata, timeout=10)
    except grpc.RpcError as e:
        return e.code()
    return grpc.StatusCode.OK


def test_the_bearer_scheme_is_case_insensitive_and_two_headers_are_refused(serve):
    server = serve(auth_token=TOKEN, auth_all=True)
    ok, refused = grpc.StatusCode.OK, grpc.StatusCode.UNAUTHENTICATED
    for scheme in ("Bearer", "bearer", "BEARER"):
        assert get_model(server.address, [("authorization", f"{scheme} {TOKEN}")]) == ok
    assert get_model(server.address, [("authorization", f"Bearer {TOKEN.lower()}")]) == refused
    assert get_model(server.address, [("authorization", f"Basic {TOKEN}")]) == refused
    twice = [("authorization", f"Bearer {TOKEN}"), ("authorization", f"Bearer {TOKEN}")]
    assert get_model(server.address, twice) == refused
    mixed = [("authorization", f"Bearer {TOKEN}"), ("authorization", "Bearer wrong")]
    assert get_model(server.address, mixed) == refused


def test_a_cancelled_stream_is_counted_cancelled_not_ok(server, model):
    words = model.vocabulary_.keywords[:3]
    more = threading.Event()

    def requests():  # type: ignore[no-untyped-def]
        yield pb.ProjectStreamRequest(
            request=pb.ProjectRequest(item_list=pb.ItemList(items=[pb.Item(keywords=words)]))
        )
        more.wait(10)  # the client holds the stream open, then goes away

    call = stub(server.address).ProjectStream(requests(), timeout=30)
    next(call)  # one answer arrived
    call.cancel()
    more.set()
    labels = {"rpc": "ProjectStream", "code": "CANCELLED"}
    assert server.metric_reaches("topicproj_requests_total", labels, 1)
    assert server.metric("topicproj_requests_total", {"rpc": "ProjectStream", "code": "OK"}) == 0


def test_idle_connections_are_closed(serve):
    server = serve(max_connection_idle_seconds=0.5)
    channel = grpc.insecure_channel(server.address)
    states: list[grpc.ChannelConnectivity] = []
    channel.subscribe(states.append, try_to_connect=False)
    pb_grpc.TopicProjectionServiceStub(channel).GetModel(pb.GetModelRequest(), timeout=10)
    deadline = time.monotonic() + 10  # the callbacks arrive on grpc's own thread
    while grpc.ChannelConnectivity.READY not in states and time.monotonic() < deadline:
        time.sleep(0.01)
    assert grpc.ChannelConnectivity.READY in states
    deadline = time.monotonic() + 10
    while states[-1] == grpc.ChannelConnectivity.READY and time.monotonic() < deadline:
        time.sleep(0.05)
    assert states[-1] == grpc.ChannelConnectivity.IDLE  # the server sent GOAWAY
    channel.close()


def test_serving_beyond_loopback_without_token_or_tls_is_warned_about(serve, caplog):
    with caplog.at_level(logging.WARNING, logger="topicproj.service.serving.server"):
        server = serve(host="0.0.0.0", metrics_host="127.0.0.1")
    text = caplog.text
    assert "listening on 0.0.0.0 with no auth token" in text and "without TLS" in text
    assert server.server._metrics_server.server_address[0] == "127.0.0.1"


@pytest.mark.parametrize(
    ("host", "token", "warnings"),
    [("127.0.0.1", None, 0), ("::1", None, 0), ("localhost", None, 0), ("0.0.0.0", None, 2),
     ("[::]", "t", 1), ("10.0.0.5", "t", 1), ("serving.example", None, 2)],
)  # fmt: skip
def test_which_listeners_are_warned_about(host, token, warnings):
    assert len(exposure_warnings(Settings(host=host, auth_token=token))) == warnings


def test_training_jobs_are_listed_page_by_page(serve, roots):
    model_root, data_root = roots
    records = TrainingJobs(
        model_root=model_root, data_root=data_root, device="cpu", max_queued=1,
        max_upload_bytes=1, activate=None,  # type: ignore[arg-type]
    )  # fmt: skip
    spec = TrainSpec(data_root / "catalog.jsonl", None, TrainOptions(), False)
    for i in range(7):  # ended jobs of earlier runs, as a restart finds them
        records._save(Job(f"job{i:02d}", spec, state=JobState.FAILED, created=1000.0 + i))
    server = serve(model_root=model_root, data_root=data_root)
    api = stub(server.address)
    seen, token, pages = [], "", 0
    while True:
        reply = api.ListTrainingJobs(
            pb.ListTrainingJobsRequest(page_size=3, page_token=token), timeout=10
        )
        seen += [j.id for j in reply.jobs]
        pages += 1
        if not (token := reply.next_page_token):
            break
    assert seen == [f"job{i:02d}" for i in range(7)] and pages == 3
    assert len(api.ListTrainingJobs(pb.ListTrainingJobsRequest(), timeout=10).jobs) == 7
    with TopicClient(server.address) as client:  # the client reads every page
        assert [j["id"] for j in client.training_jobs()] == seen
    for bad in (pb.ListTrainingJobsRequest(page_token="garbage!"),
                pb.ListTrainingJobsRequest(page_size=-1)):  # fmt: skip
        with pytest.raises(grpc.RpcError) as e:
            api.ListTrainingJobs(bad, timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
