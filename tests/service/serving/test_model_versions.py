"""Model versions through the service: listing, activating, hot swap under load, damage."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import numpy as np
import pytest

from topicproj.models.core.artifacts import WEIGHTS
from topicproj.models.core.topic_model import TopicModel
from topicproj.models.store.registry import ModelRegistry
from topicproj.service.client import TopicClient
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from ..conftest import SYNTHETIC


@pytest.fixture(scope="module")
def versions(tmp_path_factory, catalog_items):
    """A registry root with two versions, the first active, and both models in memory."""
    from topicproj.models.data.synthetic import make_synthetic_catalog

    items = make_synthetic_catalog(**SYNTHETIC).catalog.keywords
    a = TopicModel(5, min_df=2, max_epochs=4, device="cpu", random_state=0).fit(items)
    b = TopicModel(6, min_df=2, max_epochs=4, device="cpu", random_state=1).fit(items)
    root = tmp_path_factory.mktemp("registry")
    registry = ModelRegistry(root)
    va, vb = registry.add(a), registry.add(b)
    registry.activate(va)
    return root, {va: registry.load(va, "cpu"), vb: registry.load(vb, "cpu")}, va, vb


def stub(address: str) -> pb_grpc.TopicProjectionServiceStub:
    return pb_grpc.TopicProjectionServiceStub(grpc.insecure_channel(address))


def fresh_root(versions, tmp_path: Path) -> Path:
    import shutil

    root = tmp_path / "root"
    shutil.copytree(versions[0], root)
    return root


def test_list_and_activate_switch_what_is_served(serve, versions, tmp_path, catalog_items):
    root = fresh_root(versions, tmp_path)
    _, models, va, vb = versions
    server = serve(model_root=root)
    s = stub(server.address)
    listed = s.ListModels(pb.ListModelsRequest(), timeout=5).model_versions
    assert {m.version: (m.active, m.serving) for m in listed} == {
        va: (True, True),
        vb: (False, False),
    }
    info = s.ActivateModel(pb.ActivateModelRequest(version=vb), timeout=30).model
    assert info.version == vb and info.topic_count == 6
    assert all(m.create_time.seconds > 1_700_000_000 for m in listed)  # a real Timestamp
    with TopicClient(server.address) as client:
        got = client.project(catalog_items[:30])
    assert got.model_version == vb
    np.testing.assert_allclose(got.topics, models[vb].transform(catalog_items[:30]), rtol=1e-6)
    assert ModelRegistry(root).active() == vb  # the pointer moved too
    assert server.metric("topicproj_model_swaps_total") == 1


def test_hot_swap_under_load_fails_no_request(serve, versions, tmp_path, catalog_items):
    root = fresh_root(versions, tmp_path)
    _, models, va, vb = versions
    server = serve(model_root=root, max_wait_ms=1.0)
    items = catalog_items[:8]
    expected = {v: m.transform(items) for v, m in models.items()}
    failures: list[BaseException] = []
    seen: dict[str, int] = {va: 0, vb: 0}
    stop = threading.Event()

    def client_loop() -> None:
        with TopicClient(server.address) as client:
            while not stop.is_set():
                try:
                    got = client.project(items)
                    # a request is projected wholly by the version its response names
                    np.testing.assert_allclose(
                        got.topics, expected[got.model_version], rtol=1e-6, atol=1e-7
                    )
                    seen[got.model_version] += 1
                except BaseException as e:  # every failure counts, whatever it is
                    failures.append(e)

    threads = [threading.Thread(target=client_loop) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        s = stub(server.address)
        for version in [vb, va, vb, va, vb]:
            s.ActivateModel(pb.ActivateModelRequest(version=version), timeout=30)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert failures == []
    assert seen[va] > 0 and seen[vb] > 0


def test_unknown_and_damaged_versions_are_refused_and_serving_goes_on(
    serve, versions, tmp_path, catalog_items
):
    root = fresh_root(versions, tmp_path)
    _, _, va, vb = versions
    server = serve(model_root=root)
    s = stub(server.address)
    for name in ("0123456789ab", "../versions", ""):
        with pytest.raises(grpc.RpcError) as e:
            s.ActivateModel(pb.ActivateModelRequest(version=name), timeout=5)
        assert e.value.code() == grpc.StatusCode.NOT_FOUND
    weights = root / "versions" / vb / WEIGHTS
    weights.write_bytes(b"damaged" + weights.read_bytes()[7:])
    with pytest.raises(grpc.RpcError) as e:
        s.ActivateModel(pb.ActivateModelRequest(version=vb), timeout=30)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "checksum" in e.value.details()
    with TopicClient(server.address) as client:
        assert client.project(catalog_items[:2]).model_version == va
    assert ModelRegistry(root).active() == va


def test_a_damaged_active_version_at_start_falls_back(serve, versions, tmp_path):
    root = fresh_root(versions, tmp_path)
    _, _, va, vb = versions
    ModelRegistry(root).activate(vb)
    (root / "versions" / vb / WEIGHTS).write_bytes(b"garbage")
    server = serve(model_root=root)
    info = stub(server.address).GetModel(pb.GetModelRequest(), timeout=5).model
    assert info.version == va
    assert server.metric("topicproj_model_versions_refused_total") == 1
    listed = stub(server.address).ListModels(pb.ListModelsRequest(), timeout=5).model_versions
    assert {m.version: (m.active, m.serving) for m in listed} == {
        va: (False, True),
        vb: (True, False),
    }


def test_a_single_model_server_has_no_versions_to_manage(server):
    with pytest.raises(grpc.RpcError) as e:
        stub(server.address).ListModels(pb.ListModelsRequest(), timeout=5)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "--model-root" in e.value.details()
