"""The projection service against a real server on a localhost port."""

from __future__ import annotations

import asyncio
import math
import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from prometheus_client.parser import text_string_to_metric_families

from topicproj.service.client import AsyncTopicClient, TopicClient
from topicproj.service.client.wire import from_response, to_request
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

from ..conftest import field_violations


def stub(address: str) -> pb_grpc.TopicProjectionServiceStub:
    return pb_grpc.TopicProjectionServiceStub(grpc.insecure_channel(address))


def listed(*items: pb.Item, **fields: object) -> pb.ProjectRequest:
    """A request in the portable form: one message per item."""
    return pb.ProjectRequest(item_list=pb.ItemList(items=items), **fields)


def packed(keywords: str, counts: list[int], **fields: object) -> pb.ProjectRequest:
    """A request in the packed form."""
    weights = fields.pop("weights", [])
    ids = fields.pop("ids", [])
    return pb.ProjectRequest(
        packed=pb.PackedItems(keywords=keywords, keyword_counts=counts, weights=weights, ids=ids),
        **fields,
    )


def test_project_equals_in_process_projection(server, model, catalog_items):
    items = [*catalog_items[:50], [], ["never seen keyword"]]
    with TopicClient(server.address) as client:
        got = client.project(items, top_k=3)
    expected = model.transform(items)
    np.testing.assert_allclose(got.topics, expected, rtol=1e-6, atol=1e-7)
    assert got.model_version == model.version_
    assert (got.topics[-2:] == 0).all()  # no keyword, or none known: a zero vector
    assert got.unknown_keywords[-1] == 1 and got.known_keywords[-1] == 0
    assert got.active_topics.tolist() == (expected > 0).sum(axis=1).tolist()
    for row, top in zip(expected, got.top, strict=True):
        want = [t for t in np.argsort(-row, kind="stable")[:3] if row[t] > 0]
        assert [t for t, _ in top] == want
        assert [s for _, s in top] == pytest.approx([row[t] for t in want])


def test_ids_weights_and_omit_topics(server, model):
    kws = model.vocabulary_.keywords[:3]
    with TopicClient(server.address) as client:
        weighted = client.project([{"id": "a", "keywords": kws, "weights": [2.0, 0.0, 1.0]}])
        plain = client.project([{"id": "b", "keywords": [kws[0], kws[0], kws[2]]}])
        sparse = client.project([kws], top_k=2, omit_topics=True)
        portable = client.project([kws], top_k=2, omit_topics=True, fast=False)
    assert weighted.ids == ["a"] and plain.ids == ["b"]
    # weight 2 on one keyword is the keyword twice; weight 0 removes it
    np.testing.assert_allclose(weighted.topics, plain.topics, rtol=1e-6)
    for answer in (sparse, portable):
        assert answer.topics.shape == (0, model.n_topics) and 1 <= len(answer.top[0]) <= 2


def test_get_model(server, model):
    with TopicClient(server.address) as client:
        info = client.get_model(top_keywords=4)
        default = client.get_model()
        none = client.get_model(top_keywords=0)  # zero is a value, not "the default"
    assert info["version"] == model.version_
    assert info["topic_count"] == model.n_topics == len(info["topics"])
    assert info["vocabulary_size"] == len(model.vocabulary_)
    assert info["activation"] == "overlap" and info["device"] == "cpu"
    assert [t["top_keywords"] for t in info["topics"]] == model.top_keywords(4)
    assert [t["index"] for t in info["topics"]] == list(range(model.n_topics))
    thresholds = model.projector_.activation.parameters_table()["threshold"]
    assert [t["threshold"] for t in info["topics"]] == pytest.approx(thresholds)
    assert [len(t["top_keywords"]) for t in default["topics"]] == [10] * model.n_topics
    assert all(t["top_keywords"] == [] for t in none["topics"])


def test_stream_answers_in_request_order(server, model, catalog_items):
    chunks = [catalog_items[i : i + 7] for i in range(0, 140, 7)]
    requests = [
        pb.ProjectStreamRequest(
            request=listed(*[pb.Item(id=f"{c}-{j}", keywords=k) for j, k in enumerate(chunk)])
        )
        for c, chunk in enumerate(chunks)
    ]
    responses = [r.response for r in stub(server.address).ProjectStream(iter(requests), timeout=30)]
    assert len(responses) == len(chunks)
    for c, (chunk, response) in enumerate(zip(chunks, responses, strict=True)):
        rows = response.projection_list.projections
        assert [p.id for p in rows] == [f"{c}-{j}" for j in range(len(chunk))]
        got = np.array([p.topics for p in rows], dtype=np.float32)
        np.testing.assert_allclose(got, model.transform(chunk), rtol=1e-6, atol=1e-7)


def test_concurrent_clients_share_batches(serve, model, catalog_items):
    server = serve(max_wait_ms=100, max_batch_items=64)
    items = catalog_items[:48]

    async def many() -> list[np.ndarray]:
        async with AsyncTopicClient(server.address) as client:
            results = await asyncio.gather(*(client.project([item]) for item in items))
        return [r.topics[0] for r in results]

    rows = asyncio.run(many())
    np.testing.assert_allclose(np.stack(rows), model.transform(items), rtol=1e-6, atol=1e-7)
    batches = server.metric("topicproj_batch_items_count")
    batched_items = server.metric("topicproj_batch_items_sum")
    assert batched_items == 48
    assert batches < 48 / 4  # at least four clients' items per batch on average


@pytest.mark.parametrize(
    ("item", "field", "fragment"),
    [
        (pb.Item(keywords=["a", "b"], weights=[1.0]), "weights", "1 weights for 2 keywords"),
        (pb.Item(keywords=["a"], weights=[-1.0]), "weights", "finite numbers in [0,"),
        (pb.Item(keywords=["a"], weights=[math.nan]), "weights", "finite numbers in [0,"),
        (pb.Item(keywords=["a"], weights=[math.inf]), "weights", "finite numbers in [0,"),
        (pb.Item(keywords=["x" * 300]), "keywords", "keyword of 300 characters"),
    ],
)
def test_invalid_items_name_the_field(server, item, field, fragment):
    request = listed(pb.Item(keywords=["fine"]), item)
    with pytest.raises(grpc.RpcError) as e:
        stub(server.address).Project(request, timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith(f"item_list.items[1].{field}: ")
    assert fragment in e.value.details()
    [(path, description)] = field_violations(e.value)  # machine-readable, via grpc_status
    assert path == f"item_list.items[1].{field}" and fragment in description
    labels = {"rpc": "Project", "code": "INVALID_ARGUMENT"}
    assert server.metric_reaches("topicproj_requests_total", labels, 1)


def test_too_many_items_and_unknown_version(serve):
    server = serve(max_items_per_request=3)
    s = stub(server.address)
    with pytest.raises(grpc.RpcError) as e:
        s.Project(listed(*[pb.Item(keywords=["a"])] * 4), timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "limit is 3" in e.value.details()
    assert field_violations(e.value)[0][0] == "item_list.items"
    with pytest.raises(grpc.RpcError) as e:
        s.Project(listed(pb.Item(keywords=["a"]), model_version="nope"), timeout=5)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND and "'nope'" in e.value.details()


def test_full_queue_is_refused_at_once(serve, catalog_items):
    server = serve(
        max_queue_items=4,
        max_items_per_request=4,
        max_batch_items=1000,
        max_wait_ms=1500,
        wait_when_idle=True,
    )
    s = stub(server.address)  # a bare stub: no retry policy
    waiting = s.Project.future(
        listed(*[pb.Item(keywords=k) for k in catalog_items[:4]]), timeout=10
    )
    time.sleep(0.2)  # the first request is now queued, waiting for its batch to fill
    start = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        s.Project(listed(pb.Item(keywords=catalog_items[5])), timeout=10)
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert time.monotonic() - start < 1.0  # refused, not queued
    status = rpc_status.from_call(e.value)
    retry = error_details_pb2.RetryInfo()
    assert status is not None and status.details[0].Unpack(retry)
    assert retry.retry_delay.ToMilliseconds() == 100  # the default --retry-delay-ms
    assert ("grpc-retry-pushback-ms", "100") in e.value.trailing_metadata()
    assert len(waiting.result().projection_list.projections) == 4  # the queued one completes


def test_deadline_expiring_in_queue_is_dropped_before_compute(serve, catalog_items):
    server = serve(max_batch_items=1000, max_wait_ms=800, wait_when_idle=True)
    s = stub(server.address)
    with pytest.raises(grpc.RpcError) as e:
        s.Project(listed(*[pb.Item(keywords=catalog_items[0])] * 3), timeout=0.2)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(1.0)  # past the batch window: the worker has looked at the queue
    assert server.metric("topicproj_batch_items_count") == 0  # nothing was computed
    assert server.metric("topicproj_queue_items") == 0


def test_health_and_graceful_shutdown(serve, catalog_items):
    server = serve(max_batch_items=1000, max_wait_ms=600, wait_when_idle=True)
    channel = grpc.insecure_channel(server.address)
    health = health_pb2_grpc.HealthStub(channel)
    assert (
        health.Check(health_pb2.HealthCheckRequest(), timeout=5).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    watch = health.Watch(
        health_pb2.HealthCheckRequest(service="topicproj.v1.TopicProjectionService"), timeout=10
    )
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
    in_flight = stub(server.address).Project.future(
        listed(pb.Item(keywords=catalog_items[0])), timeout=10
    )
    time.sleep(0.1)  # queued, waiting for the batch window
    stopper = threading.Thread(target=server.stop, args=(5.0,))
    stopper.start()
    assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert len(in_flight.result().projection_list.projections) == 1  # finished in the grace
    stopper.join(10)
    with pytest.raises(grpc.RpcError) as e:
        health.Check(health_pb2.HealthCheckRequest(), timeout=1)
    assert e.value.code() == grpc.StatusCode.UNAVAILABLE


def test_metrics_page_parses_and_moves(server, catalog_items):
    with TopicClient(server.address) as client:
        client.project(catalog_items[:10], top_k=2)
        client.project([["unknown only"]])
    url = f"http://127.0.0.1:{server.server.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    samples = {
        s.name: s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }
    moving = [
        "topicproj_requests_total",
        "topicproj_request_latency_seconds_count",
        "topicproj_items_total",
        "topicproj_queue_wait_seconds_count",
        "topicproj_batch_compute_seconds_count",
        "topicproj_batch_items_sum",
        "topicproj_zero_topic_ratio_count",
        "topicproj_active_topics_count",
        "topicproj_unknown_keyword_ratio_count",
    ]
    for name in moving:
        assert samples[name].value > 0, name
    for name in (
        "topicproj_dead_topics",
        "topicproj_queue_items",
        "topicproj_inflight_requests",
        "process_cpu_seconds_total",  # the standard collectors, on the server's own registry
        "process_resident_memory_bytes",
        "python_info",
        "topicproj_build_info",
    ):
        assert name in samples, name
    assert samples["topicproj_model_topics"].value == 5
    assert samples["topicproj_model_vocabulary_keywords"].value > 0
    info = samples["topicproj_model_info"]
    assert info.labels["activation"] == "overlap" and info.labels["topics"] == "5"
    # unknown-only item: unknown fraction 1.0 observed
    assert samples["topicproj_unknown_keyword_ratio_sum"].value >= 1.0
    # no label carries an item id or keyword
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            assert not any("kw" in v or "unknown only" in v for v in s.labels.values())


def test_not_serving_until_warmed_up(model_dir):
    from tests.service.conftest import RunningServer
    from topicproj.models.core.topic_model import TopicModel

    release = threading.Event()
    slow_model = TopicModel.load(model_dir, device="cpu")  # its first batch, the warm-up, waits
    project = slow_model.project_batch
    slow_model.project_batch = lambda batch: (release.wait(10), project(batch))[1]
    slow = RunningServer(slow_model, wait=False, metrics_port=None)
    try:
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline and status is None:
            if slow.server.port:
                channel = grpc.insecure_channel(f"127.0.0.1:{slow.server.port}")
                try:
                    status = (
                        health_pb2_grpc.HealthStub(channel)
                        .Check(health_pb2.HealthCheckRequest(), timeout=1)
                        .status
                    )
                except grpc.RpcError:
                    pass
            time.sleep(0.05)
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        release.set()
        slow.started.result(10)
        check = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=1
        )
        assert check.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        release.set()
        slow.stop(0)


def test_async_client_get_model_and_plain_item_checks(server, model):
    async def info() -> dict:
        async with AsyncTopicClient(server.address) as client:
            return await client.get_model(top_keywords=2)

    assert asyncio.run(info())["version"] == model.version_
    with (
        TopicClient(server.address) as client,
        pytest.raises(TypeError, match="item 0 is a string"),
    ):
        client.project(["alien"])  # a keyword where a list of keywords belongs


def test_stream_error_ends_the_stream_with_its_status(server, catalog_items):
    requests = [
        pb.ProjectStreamRequest(request=listed(pb.Item(keywords=catalog_items[0]))),
        pb.ProjectStreamRequest(request=listed(pb.Item(keywords=["a"], weights=[1.0, 2.0]))),
    ]
    responses = stub(server.address).ProjectStream(iter(requests), timeout=10)
    assert len(next(responses).response.projection_list.projections) == 1
    with pytest.raises(grpc.RpcError) as e:
        next(responses)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "item_list.items[0].weights: 2 weights for 1 keywords" in e.value.details()
    labels = {"rpc": "ProjectStream", "code": "INVALID_ARGUMENT"}
    assert server.metric_reaches("topicproj_requests_total", labels, 1)
    assert server.metric("topicproj_items_total", {"rpc": "ProjectStream"}) == 2


def test_every_wire_form_gives_the_same_projections(server, model, catalog_items):
    items = [
        {"id": f"i{n}", "keywords": k, "weights": [1.5] * len(k) if n % 3 == 0 else []}
        for n, k in enumerate(catalog_items[:20])
    ]
    with TopicClient(server.address) as client:
        columnar = client.project(items, top_k=2)  # packed request, columns answer
        floats = client.project(items, top_k=2, fast=False)  # one message per item each way
        request = to_request(items, top_k=2, fast=False)  # items in, columns out
        request.response_form = pb.RESPONSE_FORM_COLUMNS
        response = stub(server.address).Project(request, timeout=5)
        mixed = from_response(response, [it["id"] for it in items])
    for other in (floats, mixed):
        np.testing.assert_array_equal(columnar.topics, other.topics)
        assert columnar.top == other.top and columnar.ids == other.ids
        for field in ("known_keywords", "unknown_keywords", "active_topics"):
            assert getattr(columnar, field).tolist() == getattr(other, field).tolist()
    assert columnar.ids == [f"i{n}" for n in range(20)]  # filled in by the client
    keywords = [it["keywords"] for it in items]
    weights = [it["weights"] or [1.0] * len(it["keywords"]) for it in items]
    expected = model.project_batch(model.vocabulary_.map_batch(keywords, weights)).numpy()
    np.testing.assert_allclose(columnar.topics, expected, rtol=1e-6, atol=1e-7)


def test_wire_forms_on_the_wire(server, model, catalog_items):
    items = catalog_items[:20]
    s = stub(server.address)
    response = s.Project(listed(*[pb.Item(keywords=k) for k in items]), timeout=5)
    assert response.WhichOneof("output") == "projection_list"  # unspecified form: items
    assert response.topic_count == model.n_topics
    request = packed(
        "".join(k + "\x1f" for item in items for k in item),
        [len(k) for k in items],
        ids=[f"i{n}" for n in range(20)],
        top_k=3,
        response_form=pb.RESPONSE_FORM_COLUMNS,
    )
    columns = s.Project(request, timeout=5).columns
    assert len(columns.known_keywords) == 20
    dense = np.frombuffer(columns.topics, "<f4").reshape(-1, model.n_topics)
    np.testing.assert_allclose(dense, model.transform(items), rtol=1e-6, atol=1e-7)
    assert columns.active_topics == list((dense > 0).sum(axis=1))
    assert sum(columns.top_counts) == len(columns.top_topics) == len(columns.top_scores)
    request.response_form = pb.RESPONSE_FORM_ITEMS  # packed in, one message per item out
    rows = s.Project(request, timeout=5).projection_list.projections
    assert [p.id for p in rows] == [f"i{n}" for n in range(20)]
    np.testing.assert_allclose([p.topics for p in rows], dense, rtol=1e-6, atol=1e-7)
    empty = s.Project(pb.ProjectRequest(response_form=pb.RESPONSE_FORM_COLUMNS), timeout=5)
    assert empty.WhichOneof("output") == "columns" and not empty.columns.known_keywords


def test_a_keyword_holding_the_separator_is_sent_as_items(server, model):
    kws = model.vocabulary_.keywords[:2]
    with TopicClient(server.address) as client:
        odd = client.project([{"id": "x", "keywords": [*kws, "odd\x1fkeyword"]}])
        plain = client.project([{"id": "x", "keywords": kws}])
    np.testing.assert_array_equal(odd.topics, plain.topics)
    assert odd.ids == ["x"] and odd.unknown_keywords.tolist() == [1]


@pytest.mark.parametrize(
    ("request_", "field", "fragment"),
    [
        (packed("a\x1fb\x1f", [1]), "packed.keyword_counts", "add up to 1, but"),
        (packed("a\x1fb", [2]), "packed.keywords", "must end with U+001F"),
        (packed("a\x1fb\x1f", [1, 1], weights=[1.0]), "packed.weights", "1 weights for 2"),
        (packed("a\x1f", [1], ids=["x", "y"]), "packed.ids", "2 ids for 1 items"),
        (
            packed("a\x1fb\x1fc\x1f", [1, 2], weights=[1.0, 1.0, -2.0]),
            "packed.weights",
            "item 1 has the weight -2.0",
        ),
        (
            packed("a\x1f" + "x" * 300 + "\x1f", [1, 1]),
            "packed.keywords",
            "item 1 has a keyword of 300 characters",
        ),
    ],
)
def test_malformed_packed_requests_are_refused_clearly(server, request_, field, fragment):
    with pytest.raises(grpc.RpcError) as e:
        stub(server.address).Project(request_, timeout=5)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in e.value.details()
    assert field_violations(e.value) == [(field, e.value.details().split(": ", 1)[1])]


def test_settings_refuse_requests_larger_than_the_queue():
    from pydantic import ValidationError

    from topicproj.service.settings import Settings

    with pytest.raises(ValidationError, match="exceeds max_queue_items"):
        Settings(max_queue_items=10, max_items_per_request=11)


def test_client_refuses_a_keyword_string_in_a_dict_item(server):
    with TopicClient(server.address) as client, pytest.raises(TypeError, match="item 0"):
        client.project([{"id": "x", "keywords": "action"}])
