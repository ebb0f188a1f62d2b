"""Uploads under attack, against a real server: quotas, concurrency, names, expiry."""

from __future__ import annotations

import threading
import time

import grpc
import pytest
from google.rpc import error_details_pb2

from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from ..conftest import field_violations
from ..serving.test_hostile_limits import details


def stub(address: str) -> pb_grpc.TopicProjectionServiceStub:
    return pb_grpc.TopicProjectionServiceStub(grpc.insecure_channel(address))


def upload(address: str, name: str, data: bytes) -> str:
    chunks = iter([pb.UploadCatalogRequest(filename=name, data=data)])
    return stub(address).UploadCatalog(chunks, timeout=10).upload_id


def quota_subject(error: grpc.RpcError) -> str:
    (quota,) = details(error, error_details_pb2.QuotaFailure)
    return quota.violations[0].subject


def kept(model_root) -> list[str]:  # type: ignore[no-untyped-def]
    folder = model_root / "uploads"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.mark.parametrize(
    "name", ["a\0b.jsonl", "../x.jsonl", "dir/x.jsonl", "..\\x.jsonl", "é" * 128, "x\nforged", ".."]
)
def test_bad_upload_names_are_invalid_argument(serve, roots, name):
    model_root, data_root = roots
    server = serve(model_root=model_root, data_root=data_root)
    with pytest.raises(grpc.RpcError) as e:
        upload(server.address, name, b"{}\n")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(e.value)[0][0] == "filename"
    assert kept(model_root) == []


def test_uploads_kept_are_bounded_in_count_and_bytes(serve, roots):
    model_root, data_root = roots
    server = serve(
        model_root=model_root,
        data_root=data_root,
        max_upload_bytes=1000,
        max_upload_total_bytes=2500,
        max_uploads=3,
    )
    first = [upload(server.address, f"c{i}.jsonl", b"x" * 999) for i in range(2)]
    with pytest.raises(grpc.RpcError) as e:  # 2 x 999 kept: 999 more would pass 2,500
        upload(server.address, "c2.jsonl", b"x" * 999)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert quota_subject(e.value) == "max_upload_total_bytes"
    assert kept(model_root) == sorted(first)  # nothing of the refused one is kept
    upload(server.address, "small.jsonl", b"x" * 10)  # room for a small one: 3 kept
    with pytest.raises(grpc.RpcError) as e:
        upload(server.address, "c3.jsonl", b"x")
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert quota_subject(e.value) == "max_uploads"
    assert server.metric_reaches("topicproj_requests_refused_total", {"limit": "max_uploads"}, 1)


def test_concurrent_uploads_are_bounded(serve, roots):
    model_root, data_root = roots
    server = serve(model_root=model_root, data_root=data_root, max_concurrent_uploads=1)
    release = threading.Event()

    def slow_chunks():  # type: ignore[no-untyped-def]
        yield pb.UploadCatalogRequest(filename="slow.jsonl", data=b"x" * 100)
        release.wait(20)
        yield pb.UploadCatalogRequest(data=b"y" * 100)

    result: list[object] = []
    t = threading.Thread(
        target=lambda: result.append(stub(server.address).UploadCatalog(slow_chunks(), timeout=30))
    )
    t.start()
    deadline = time.monotonic() + 10
    while not kept(model_root) and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        with pytest.raises(grpc.RpcError) as e:
            upload(server.address, "other.jsonl", b"{}\n")
        assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert quota_subject(e.value) == "max_concurrent_uploads"
    finally:
        release.set()
        t.join(30)
    assert result and result[0].size_bytes == 200  # type: ignore[attr-defined]
    upload(server.address, "other.jsonl", b"{}\n")  # its turn now


def test_expired_uploads_are_swept_without_a_new_upload(serve, roots):
    model_root, data_root = roots
    server = serve(model_root=model_root, data_root=data_root, upload_ttl_hours=0.0004)  # 1.4 s
    upload(server.address, "old.jsonl", b"{}\n")
    assert len(kept(model_root)) == 1
    deadline = time.monotonic() + 10
    while kept(model_root) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert kept(model_root) == []
