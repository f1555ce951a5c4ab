"""Distributed traces with OpenTelemetry: one W3C trace per request or checkout.

Every process calls :func:`configure_tracing` once at start. The maintained
instrumentations trace what they know (Django's requests, gRPC's calls on
both sides, database statements, Celery's tasks); this module adds the hops
they cannot see: a checkout's context is stored with its outbox rows, the
relay publishes each row in a span of that trace and puts its context in the
message's headers, and each consumer processes each event in a span under
it (events.consuming).

The standard variables choose what happens to the spans (read by the SDK
itself, except the exporter's name and OTEL_SERVICE_NAME, which a process's
default name would override):

- ``OTEL_TRACES_EXPORTER``: ``none`` (the default), ``otlp`` (OTLP over
  HTTP/protobuf to ``OTEL_EXPORTER_OTLP_ENDPOINT``, default
  http://localhost:4318) or ``console``;
- ``OTEL_SERVICE_NAME``: the process's name in a trace (each has its own
  default: marketplace-site, relay, worker, recommender);
- ``OTEL_TRACES_SAMPLER`` and its argument, when exporting;
- ``OTEL_SDK_DISABLED=true``: no tracing at all (below).

With nothing exported, spans are not recorded: the sampler drops them all,
but each still gets its ids, so log lines carry the trace id (their
correlation id) and the next hop continues the same trace. Disabled, a
process does no tracing work: no provider, nothing instrumented, no span
made, no context read or attached (its log lines carry "-"; the relay
passes a row's stored context on as it is); `make bench` measures what
"off" costs against that.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanProcessor,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id
from pydantic import AfterValidator, BeforeValidator, Field

from events.environment import EnvSettings, one_of

log = logging.getLogger(__name__)

NONE, OTLP, CONSOLE = "none", "otlp", "console"
tracer = trace.get_tracer("bookstore")
# Set by configure_tracing; spans are made only where they are kept, and
# none at all (nor any context read) where tracing is disabled.
_recording = False
_disabled = False

__all__ = [
    "SpanKind",
    "configure_tracing",
    "current_trace_id",
    "tracer",
    "tracing_disabled",
    "tracing_on",
]


def _otel_boolean(value: object) -> object:
    """OpenTelemetry's booleans are "true" and "false" alone: its specification
    forbids an SDK to read 1, yes or on as true, so a value the SDK (and any
    other OTel tool on the host) would read as false is refused here instead
    of meaning true to us."""
    if not isinstance(value, str):
        return value
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"must be true or false (OpenTelemetry's words only), got {value!r}")


class TracingEnv(EnvSettings):
    """What the SDK does not read itself, would let a process's default
    override, or reads only for itself (not for the instrumentations)."""

    otel_traces_exporter: Annotated[str, AfterValidator(one_of(NONE, OTLP, CONSOLE))] = Field(
        NONE, validation_alias="OTEL_TRACES_EXPORTER"
    )
    # The SDK reads it too, but a service.name given in code wins over its
    # reading: the process's default name goes in only when this is unset.
    otel_service_name: str = Field("", validation_alias="OTEL_SERVICE_NAME")
    # The standard switch of the whole SDK: here it also keeps out the
    # instrumentations and our own spans.
    otel_sdk_disabled: Annotated[bool, BeforeValidator(_otel_boolean)] = Field(
        False, validation_alias="OTEL_SDK_DISABLED"
    )


def configure_tracing(
    service: str,
    *,
    environ: Mapping[str, str] | None = None,
    processor: SpanProcessor | None = None,
) -> bool:
    """Sets the process's tracer provider as the variables say (once per
    process); whether spans are recorded and sent somewhere.

    ``processor`` (a test's in-memory exporter) records every span instead.
    Else, with OTEL_SDK_DISABLED=true, nothing is set up, and
    :func:`tracing_disabled` tells the hot paths to skip their spans.
    """
    env = TracingEnv.from_env(environ)
    global _recording, _disabled
    if processor is None and env.otel_sdk_disabled:
        # As a provider is, only by a process's first call.
        _disabled = isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
        return False
    if processor is None:
        exporter = env.otel_traces_exporter
        processor = None if exporter == NONE else BatchSpanProcessor(_exporter(exporter))
    resource = service_resource(service, env)
    # Sampling reads OTEL_TRACES_SAMPLER when spans go somewhere; else none is kept.
    provider = TracerProvider(resource=resource, sampler=None if processor else ALWAYS_OFF)
    if processor is not None:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    if trace.get_tracer_provider() is provider:  # the first call's provider stays
        _recording = processor is not None
    return processor is not None


def service_resource(service: str, env: TracingEnv) -> Resource:
    """The process's resource: named OTEL_SERVICE_NAME when set, else ``service``."""
    return Resource.create({"service.name": env.otel_service_name or service})


def tracing_on() -> bool:
    """Whether this process records spans. Where it does not, a hot path may
    skip making one (they would be dropped) and only pass the context on."""
    return _recording


def tracing_disabled() -> bool:
    """Whether OTEL_SDK_DISABLED turned tracing off entirely: read once, at
    start, by what would otherwise make a span or carry a context per call."""
    return _disabled


def _exporter(name: str) -> SpanExporter:
    if name == CONSOLE:
        return ConsoleSpanExporter()
    # Imported only when used: it pulls in an HTTP client.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def current_trace_id() -> str:
    """The trace id of the work in hand, as logs and stored rows show it ("-": none)."""
    return _trace_id(trace.get_current_span())


def trace_id_in(carrier: Mapping[str, object] | None) -> str:
    """The trace id the W3C headers in ``carrier`` name, as logs show it ("-": none)."""
    return _trace_id(trace.get_current_span(extracted(carrier)))


def _trace_id(span: trace.Span) -> str:
    span_context = span.get_span_context()
    return format_trace_id(span_context.trace_id) if span_context.is_valid else "-"


def trace_context() -> dict[str, str]:
    """The current context as W3C headers (traceparent, tracestate), to store or send."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extracted(carrier: Mapping[str, object] | None) -> context.Context:
    """The context ``carrier`` (stored, or a message's headers) holds."""
    headers = {k: v for k, v in (carrier or {}).items() if isinstance(v, str)}
    return propagate.extract(headers)


class TraceIdFilter(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` to every record: of the span in hand,
    or, for a line about an event, of the trace it came with (an explicit
    ``extra={"trace_id": ...}`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "trace_id"):
            span_context = trace.get_current_span().get_span_context()
            if span_context.is_valid:
                record.trace_id = format_trace_id(span_context.trace_id)
                record.span_id = format_span_id(span_context.span_id)
            else:
                record.trace_id = "-"
        if not hasattr(record, "span_id"):
            record.span_id = "-"
        return True
