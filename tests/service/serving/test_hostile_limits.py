"""Bounded cost per call, against a real server: oversized requests are refused before their
work, with a status a client can act on and a counted metric."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from topicproj.service.settings import Settings
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from ..conftest import field_violations
from .test_open_inference import infer_request
from .test_open_inference import stub as oip_stub

SEP = "\x1f"


def stub(address: str) -> pb_grpc.TopicProjectionServiceStub:
    return pb_grpc.TopicProjectionServiceStub(grpc.insecure_channel(address))


def packed(items: list[list[str]]) -> pb.ProjectRequest:
    text = "".join(k + SEP for item in items for k in item)
    counts = [len(item) for item in items]
    return pb.ProjectRequest(packed=pb.PackedItems(keywords=text, keyword_counts=counts))


def listed(items: list[list[str]]) -> pb.ProjectRequest:
    return pb.ProjectRequest(item_list=pb.ItemList(items=[pb.Item(keywords=i) for i in items]))


def details(error: grpc.RpcError, kind):  # type: ignore[no-untyped-def]
    status = rpc_status.from_call(error)
    out = []
    for detail in status.details if status else []:
        if detail.Is(kind.DESCRIPTOR):
            message = kind()
            detail.Unpack(message)
            out.append(message)
    return out


def test_the_defaults_fit_the_queue_and_the_receive_limit():
    s = Settings()
    assert s.max_keywords_per_request <= s.max_queued_keywords
    # the largest request of keywords of 255 bytes (and their separators) fits one message
    assert s.max_keywords_per_request * 256 <= s.max_receive_bytes


@pytest.mark.parametrize("form", [packed, listed])
def test_too_many_keywords_in_one_request_is_invalid_argument(serve, model, form):
    server = serve(max_keywords_per_request=100)
    words = model.vocabulary_.keywords
    ok = stub(server.address).Project(form([words[:50], words[:50]]), timeout=10)
    assert len(ok.projection_list.projections) == 2
    with pytest.raises(grpc.RpcError) as e:
        stub(server.address).Project(form([words[:50], words[:51]]), timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "101 keywords in one request; the limit is 100" in e.value.details()
    field = "packed.keyword_counts" if form is packed else "item_list.items"
    assert field_violations(e.value)[0][0] == field
    assert (
        server.metric("topicproj_requests_refused_total", {"limit": "max_keywords_per_request"})
        == 1
    )


def test_counts_that_claim_too_many_keywords_are_refused_before_decoding(serve):
    server = serve(max_keywords_per_request=100)
    request = pb.ProjectRequest(packed=pb.PackedItems(keywords="a" + SEP, keyword_counts=[10**9]))
    with pytest.raises(grpc.RpcError) as e:
        stub(server.address).Project(request, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the limit is 100" in e.value.details()


def test_a_message_over_the_receive_limit_is_refused_by_grpc(serve):
    server = serve(max_receive_bytes=64 * 1024)
    request = packed([["x" * 200] * 400])  # about 80 kB
    with pytest.raises(grpc.RpcError) as e:
        stub(server.address).Project(request, timeout=10)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_keywords_queued_over_the_budget_get_resource_exhausted_with_quota_failure(serve, model):
    # The first request waits in the batcher for company; meanwhile the budget is spent.
    server = serve(
        max_keywords_per_request=100,
        max_queued_keywords=150,
        max_wait_ms=1500,
        wait_when_idle=True,
    )
    words = model.vocabulary_.keywords
    first: list[object] = []
    t = threading.Thread(
        target=lambda: first.append(stub(server.address).Project(listed([[words[0]] * 100]))),
    )
    t.start()
    deadline = time.monotonic() + 5
    while server.metric("topicproj_queued_keywords") < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(grpc.RpcError) as e:
        stub(server.address).Project(listed([[words[0]] * 60]), timeout=10)
    t.join(10)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    (quota,) = details(e.value, error_details_pb2.QuotaFailure)
    assert quota.violations[0].subject == "max_queued_keywords"
    assert details(e.value, error_details_pb2.RetryInfo)  # when to try again
    assert len(first) == 1  # the admitted request was answered
    assert server.metric("topicproj_queued_keywords") == 0  # and released its budget
    assert server.metric("topicproj_requests_refused_total", {"limit": "max_queued_keywords"}) == 1
    ok = stub(server.address).Project(listed([[words[0]] * 60]), timeout=10)  # room again
    assert len(ok.projection_list.projections) == 1


@pytest.mark.parametrize("raw", [True, False])
def test_open_inference_shapes_over_the_limit_are_refused_before_decoding(serve, raw):
    server = serve(max_keywords_per_request=100)
    request = infer_request([["a"] * 60, ["b"] * 41], raw=raw)
    with pytest.raises(grpc.RpcError) as e:
        oip_stub(server.address).ModelInfer(request, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "101 keywords in one request" in e.value.details()


def test_a_raw_tensor_holding_more_than_its_shape_is_refused(server):
    request = infer_request([["a", "b", "c"]], raw=True)
    request.inputs[0].shape[0] = 2  # the raw tensor holds 3: decoding stops at the third
    request.inputs[1].contents.Clear()
    with pytest.raises(grpc.RpcError) as e:
        oip_stub(server.address).ModelInfer(request, timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT

