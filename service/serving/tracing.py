"""OpenTelemetry tracing, off by default (the `otel` extra; `--tracing` or OTEL_* to turn on).

Each RPC of the projection service and of the Open Inference Protocol is a server span, its
parent taken from the caller's trace context in the gRPC metadata (`traceparent`). A request
that goes through the batcher gets two child spans: `queue wait`, from its arrival in the queue
to the start of its batch, and `batch compute`, the batch's projection, which links the spans of
every request it served. With tracing off, nothing of OpenTelemetry is imported.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import Any

import grpc

TRACER_NAME = "topicproj"


def wanted(flag: bool) -> bool:
    """Tracing is on with --tracing, or when OTEL_TRACES_EXPORTER names an exporter."""
    return flag or os.environ.get("OTEL_TRACES_EXPORTER", "none") not in ("", "none")


def default_provider() -> Any:
    """A tracer provider exporting as OTEL_TRACES_EXPORTER says: otlp (the default, needs
    opentelemetry-exporter-otlp) or console. Service name from OTEL_SERVICE_NAME."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "topicproj")})
    provider = TracerProvider(resource=resource)
    kind = os.environ.get("OTEL_TRACES_EXPORTER", "otlp")
    if kind == "console":
        exporter: Any = ConsoleSpanExporter()
    else:
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # OTEL_EXPORTER_OTLP_ENDPOINT and friends
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class Tracing:
    """Spans for RPCs and their passage through the batcher."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry import propagate, trace

        self._trace = trace
        self._propagate = propagate
        self.tracer = provider.get_tracer(TRACER_NAME)

    @contextlib.contextmanager
    def rpc(self, method: str, context: grpc.aio.ServicerContext) -> Iterator[Any]:
        """A server span for one call, child of the caller's span when it sent one."""
        carrier = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        parent = self._propagate.extract(carrier)
        service, name = method.strip("/").split("/", 1)
        with self.tracer.start_as_current_span(
            f"{service}/{name}",
            context=parent,
            kind=self._trace.SpanKind.SERVER,
            attributes={"rpc.system": "grpc", "rpc.service": service, "rpc.method": name},
        ) as span:
            yield span

    def current(self) -> Any:
        """The span of the request now being submitted to the batcher."""
        return self._trace.get_current_span()

    def batch(
        self,
        spans: Sequence[Any],
        enqueued_ns: Sequence[int],
        start_ns: int,
        end_ns: int,
        items: int,
    ) -> None:
        """Queue wait and batch compute, as children of each request's span."""
        links = [self._trace.Link(s.get_span_context()) for s in spans if s.is_recording()]
        for span, queued in zip(spans, enqueued_ns, strict=True):
            if not span.is_recording():
                continue
            parent = self._trace.set_span_in_context(span)
            wait = self.tracer.start_span("queue wait", context=parent, start_time=queued)
            wait.end(end_time=start_ns)
            compute = self.tracer.start_span(
                "batch compute",
                context=parent,
                start_time=start_ns,
                links=links,
                attributes={"topicproj.batch.items": items, "topicproj.batch.requests": len(spans)},
            )
            compute.end(end_time=end_ns)
