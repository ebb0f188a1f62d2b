"""The response cache: repeats answered without projecting, never a stale or foreign answer."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from topicproj.service.client import TopicClient
from topicproj.service.client.wire import to_request
from topicproj.v1 import topicproj_pb2 as pb

from .test_model_versions import fresh_root, stub, versions  # noqa: F401


def wait_for_hits(server, hits: float) -> None:
    deadline = time.monotonic() + 60
    while server.metric("topicproj_response_cache_hits_total") < hits:
        assert time.monotonic() < deadline, "the clients got no answers from the cache"
        time.sleep(0.01)


def test_a_repeated_request_is_answered_from_the_cache(serve, model, catalog_items):
    server = serve()
    items = catalog_items[:5]
    with TopicClient(server.address) as client:
        first = client.project(items, top_k=2)
        batches = server.metric("topicproj_batch_items_count")
        second = client.project(items, top_k=2)
        other = client.project(items, top_k=3)  # another question: not the same answer
    assert second.topics.tobytes() == first.topics.tobytes()
    assert second.top == first.top
    # top-k lists only active topics: some items have a third one to show
    assert any(len(a) > len(b) for a, b in zip(other.top, first.top, strict=True))
    assert server.metric("topicproj_response_cache_hits_total") == 1
    assert server.metric("topicproj_response_cache_misses_total") == 2
    # the hit never reached the batcher; the top_k=3 call did
    assert server.metric("topicproj_batch_items_count") == batches + 1
    np.testing.assert_allclose(second.topics, model.transform(items), rtol=1e-6)


def test_the_cache_can_be_turned_off(serve, catalog_items):
    server = serve(response_cache_bytes=0)
    with TopicClient(server.address) as client:
        for _ in range(3):
            client.project(catalog_items[:3])
    assert server.metric("topicproj_response_cache_hits_total") == 0
    assert server.metric("topicproj_batch_items_count") == 3


def test_the_cache_stays_within_its_bytes(serve, catalog_items):
    budget = 64 << 10
    server = serve(response_cache_bytes=budget)
    with TopicClient(server.address) as client:
        for i in range(300):  # distinct requests, each a few hundred bytes each way
            client.project([catalog_items[i % len(catalog_items)], [f"k{i}"]])
    held = server.metric("topicproj_response_cache_bytes")
    assert 0 < held <= budget
    assert server.metric("topicproj_response_cache_evictions_total") > 0


def test_no_answer_of_the_old_version_after_a_swap_under_traffic(
    serve,
    versions,  # noqa: F811
    tmp_path: Path,
    catalog_items,
):
    """Clients repeat the same few requests while the served version changes: every answer
    is the one its version computes, and once the swap returns no answer is the old one's."""
    root = fresh_root(versions, tmp_path)
    _, models, _, vb = versions
    server = serve(model_root=root, max_wait_ms=1.0)
    requests = [catalog_items[i : i + 3] for i in range(0, 12, 3)]
    expected = {v: [m.transform(r) for r in requests] for v, m in models.items()}
    swapped = threading.Event()
    wrong: list[str] = []
    stop = threading.Event()

    def client_loop() -> None:
        with TopicClient(server.address) as client:
            while not stop.is_set():
                for j, items in enumerate(requests):
                    after = swapped.is_set()
                    got = client.project(items)
                    if after and got.model_version != vb:
                        wrong.append(f"old version {got.model_version} after the swap")
                    if not np.allclose(got.topics, expected[got.model_version][j], rtol=1e-6):
                        wrong.append(f"request {j}: numbers not those of {got.model_version}")

    threads = [threading.Thread(target=client_loop) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        wait_for_hits(server, 20)  # the old version's answers are in the cache
        stub(server.address).ActivateModel(pb.ActivateModelRequest(version=vb), timeout=30)
        swapped.set()
        wait_for_hits(server, server.metric("topicproj_response_cache_hits_total") + 20)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not wrong, wrong[:5]


def test_new_labels_are_not_hidden_by_the_cache(serve, versions, tmp_path):  # noqa: F811
    root = fresh_root(versions, tmp_path)
    server = serve(model_root=root)
    s = stub(server.address)
    request = to_request([["alien", "space"]], top_k=1)
    before = s.Project(request, timeout=5)
    topic = before.columns.top_topics[0]
    s.SetTopicLabels(pb.SetTopicLabelsRequest(labels={topic: "outer space"}), timeout=5)
    after = s.Project(request, timeout=5)
    assert list(after.columns.top_labels) == ["outer space"]


def test_keys_hold_everything_that_changes_the_answer(serve, catalog_items):
    """Same keywords, other ids, weights, explanations or response form: other answers, none
    from the cache."""
    server = serve()
    s = stub(server.address)
    items = catalog_items[:2]
    forms = [
        to_request(items),
        to_request(items, fast=False),
        to_request(items, explain=2),
        to_request(
            [{"id": "x", "keywords": items[0]}, {"id": "y", "keywords": items[1]}], fast=False
        ),
        to_request([{"keywords": items[0], "weights": [2.0] * len(items[0])}, items[1]]),
        to_request(items, omit_topics=True),
    ]
    answers = [s.Project(r, timeout=5) for r in forms]
    assert server.metric("topicproj_response_cache_hits_total") == 0
    ids = [p.id for p in answers[3].projection_list.projections]
    assert ids == ["x", "y"]
    assert answers[4].columns.topics != answers[0].columns.topics  # the weights count
