"""Server interceptors: cross-cutting concerns kept out of the servicer."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import grpc
from opentelemetry.trace import Span, StatusCode
from prometheus_client import Histogram

from events.tracing import SpanKind, extracted, tracer

log = logging.getLogger("recommender.access")

RPC_LATENCY = Histogram(
    "recommender_rpc_seconds",
    "Time to answer an RPC, by method and status code.",
    ["method", "code"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
# Probes every few seconds would drown the access log: their line is DEBUG.
QUIET_PREFIXES = ("/grpc.health.v1.Health/",)
# RECOMMENDER_ACCESS_LOG: "problems" logs the calls that failed or were slow;
# "every" one line per call. A line per call costs about a quarter of the
# calls a replica answers (bench/README.md), so it is the operator's choice.
PROBLEMS, EVERY = "problems", "every"
# A call is slow from this long (RECOMMENDER_SLOW_CALL_MS): a quarter of the
# site's default deadline (RECOMMENDER_TIMEOUT, 250 ms).
DEFAULT_SLOW_SECONDS = 0.06
# A client that ends its own call has nothing to report here.
UNREMARKABLE = ("OK", "CANCELLED")


_Request = TypeVar("_Request")
_Response = TypeVar("_Response")
# What grpc.aio hands an interceptor for a method: a coroutine function, or an
# async generator for a stream of responses. grpc's stubs describe the
# synchronous server's behaviours, so these are cast to what aio gives.
_Context = grpc.aio.ServicerContext[Any, Any]
_Answer = Callable[[Any, _Context], Awaitable[Any]]
_Stream = Callable[[Any, _Context], AsyncIterator[Any]]


class AccessLogInterceptor(grpc.aio.ServerInterceptor):
    """Traces and measures every call, and logs the ones asked for: method,
    status code, duration, peer; the line carries the call's trace id.

    The call's span continues the caller's trace (W3C traceparent metadata)
    and follows OpenTelemetry's conventions for gRPC servers. It is made here
    rather than by opentelemetry-instrumentation-grpc's aio server
    interceptor, which fails every stream written with context.write (gRPC
    health's Watch): open-telemetry/opentelemetry-python-contrib#3066.

    With ``every_call`` each call has its INFO line; otherwise only a call
    that failed or took ``slow_seconds`` or more does, and the others are
    DEBUG lines (formatted only when DEBUG is on).
    """

    def __init__(
        self, *, every_call: bool = False, slow_seconds: float = DEFAULT_SLOW_SECONDS
    ) -> None:
        self.every_call = every_call
        self.slow_seconds = slow_seconds
        # Label lookups cost more than the observation: one child per (method, code).
        self._latency: dict[tuple[str, str], Histogram] = {}
        # Method -> (the handler as served, the same wrapped).
        self._wrapped: dict[str, tuple[Any, Any]] = {}

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails],
            Awaitable[grpc.RpcMethodHandler[_Request, _Response] | None],
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[_Request, _Response] | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        # Wrapped once per method, not per call: a call then costs a lookup here.
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is None or known[0] is not handler:
            known = self._wrapped[method] = (handler, self._wrap(method, handler))
        return known[1]

    def _wrap(
        self, method: str, handler: grpc.RpcMethodHandler[_Request, _Response]
    ) -> grpc.RpcMethodHandler[_Request, _Response]:
        service, _, name = method[1:].rpartition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        quiet = method.startswith(QUIET_PREFIXES)

        def finish(peer: str, started: float, code: grpc.StatusCode | str) -> None:
            elapsed = time.perf_counter() - started
            name = code.name if isinstance(code, grpc.StatusCode) else code
            latency = self._latency.get((method, name))
            if latency is None:
                latency = self._latency[method, name] = RPC_LATENCY.labels(method=method, code=name)
            latency.observe(elapsed)
            remarkable = name not in UNREMARKABLE or elapsed >= self.slow_seconds
            level = logging.INFO if remarkable or (self.every_call and not quiet) else logging.DEBUG
            if log.isEnabledFor(level):
                log.log(
                    level,
                    # The call's trace id is the line's (events.tracing.TraceIdFilter).
                    "rpc method=%s code=%s duration_ms=%.2f peer=%s%s",
                    method,
                    name,
                    elapsed * 1000,
                    peer,
                    " slow" if elapsed >= self.slow_seconds else "",
                )

        def traced(span: Span, code: grpc.StatusCode | str) -> None:
            status = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
            span.set_attribute("rpc.grpc.status_code", status.value[0])
            if status is not grpc.StatusCode.OK:
                span.set_status(StatusCode.ERROR, status.name)

        def outcome(context: _Context, exc: BaseException | None) -> grpc.StatusCode | str:
            if exc is None or isinstance(exc, grpc.aio.AbortError):
                return context.code() or grpc.StatusCode.OK
            if isinstance(exc, asyncio.CancelledError):
                return grpc.StatusCode.CANCELLED
            return "UNKNOWN"  # an uncaught exception: gRPC answers UNKNOWN

        @contextmanager
        def measured(context: _Context) -> Iterator[None]:
            started = time.perf_counter()
            # Read while the call is live, never after: once a call is cancelled
            # its connection can be freed, and peer() then reads freed memory in
            # gRPC core (grpc/grpc#29069): any client could crash the server.
            peer = context.peer()
            # The caller's trace, from its W3C headers (traceparent, tracestate).
            caller = extracted(dict(context.invocation_metadata() or ()))
            with tracer.start_as_current_span(
                method[1:], context=caller, kind=SpanKind.SERVER, attributes=attributes
            ) as span:
                try:
                    yield
                except BaseException as exc:
                    code = outcome(context, exc)
                    traced(span, code)
                    finish(peer, started, code)
                    raise
                code = outcome(context, None)
                traced(span, code)
                finish(peer, started, code)

        # Every kind of method, wrapped as the servicer wrote it: a coroutine
        # (returning the answer, or writing a stream with context.write, as
        # health's Watch does) or an async generator.
        kinds = (
            (handler.unary_unary, grpc.unary_unary_rpc_method_handler),
            (handler.unary_stream, grpc.unary_stream_rpc_method_handler),
            (handler.stream_unary, grpc.stream_unary_rpc_method_handler),
            (handler.stream_stream, grpc.stream_stream_rpc_method_handler),
        )
        behavior, method_handler = next((b, make) for b, make in kinds if b is not None)
        wrapped: _Answer | _Stream
        if inspect.isasyncgenfunction(behavior):
            stream = cast(_Stream, behavior)

            async def wrapped_stream(request: Any, context: _Context) -> AsyncIterator[Any]:
                with measured(context):
                    async for response in stream(request, context):
                        yield response

            wrapped = wrapped_stream
        else:
            answer = cast(_Answer, behavior)

            async def wrapped_answer(request: Any, context: _Context) -> Any:
                with measured(context):
                    return await answer(request, context)

            wrapped = wrapped_answer

        return method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
