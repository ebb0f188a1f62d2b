"""OpenTelemetry spans: one per RPC, its parent the caller's, and the batcher's passage as
children that link every request of a batch. Exported to memory, read back and checked."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from tests.service.conftest import RunningServer
from topicproj.v1 import topicproj_pb2 as pb
from topicproj.v1 import topicproj_pb2_grpc as pb_grpc

otel = pytest.importorskip("opentelemetry.sdk.trace")
from opentelemetry import propagate, trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)


@pytest.fixture
def traced(model):  # type: ignore[no-untyped-def]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = RunningServer(
        model, tracer_provider=provider, max_wait_ms=300, max_batch_items=64, wait_when_idle=True
    )
    yield server, exporter, provider
    server.stop(0)


def test_rpc_spans_continue_the_callers_trace_and_show_the_batch(traced, catalog_items):
    server, exporter, provider = traced
    caller = provider.get_tracer("a client")
    request = pb.ProjectRequest(
        item_list=pb.ItemList(items=[pb.Item(keywords=k) for k in catalog_items[:3]])
    )

    async def three_at_once() -> list:  # type: ignore[type-arg]
        async with grpc.aio.insecure_channel(server.address) as channel:
            stub = pb_grpc.TopicProjectionServiceStub(channel)
            with caller.start_as_current_span("client call") as root:
                carrier: dict[str, str] = {}
                propagate.inject(carrier)  # traceparent, as any OTel client sends it
                calls = [stub.Project(request, metadata=tuple(carrier.items())) for _ in range(3)]
                await asyncio.gather(*calls)
            return [root]

    [root] = asyncio.run(three_at_once())
    spans = exporter.get_finished_spans()
    rpcs = [s for s in spans if s.name == "topicproj.v1.TopicProjectionService/Project"]
    assert len(rpcs) == 3
    for span in rpcs:
        assert span.kind == trace.SpanKind.SERVER
        assert span.context.trace_id == root.context.trace_id  # one trace, the caller's
        assert span.parent.span_id == root.context.span_id
        assert span.attributes["rpc.method"] == "Project"
        assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.OK.value[0]
        children = {
            s.name: s for s in spans if s.parent and s.parent.span_id == span.context.span_id
        }
        assert set(children) == {"queue wait", "batch compute"}
        wait, compute = children["queue wait"], children["batch compute"]
        assert wait.end_time <= compute.start_time <= compute.end_time <= span.end_time
        # the three requests shared one batch: its compute span links all three
        assert compute.attributes["topicproj.batch.requests"] == 3
        assert {link.context.span_id for link in compute.links} == {s.context.span_id for s in rpcs}


def test_tracing_is_off_by_default(server, monkeypatch):
    monkeypatch.delenv("OTEL_TRACES_EXPORTER", raising=False)
    assert server.server.tracing is None
