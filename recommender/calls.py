"""What every call to the recommender goes through: a trace, a measure, a line
in the access log where one is asked for, and the shared token's check.

Each method handler is wrapped once, as its service registers with the server
(:class:`WrappingServer`), rather than by grpc.aio interceptors: with an
interceptor the server runs the interceptor chain as coroutines on every
call, and that chain cost more than the ranking itself (bench/README.md).

The call's span continues the caller's trace (W3C traceparent metadata) and
follows OpenTelemetry's conventions for gRPC servers. It is made here rather
than by opentelemetry-instrumentation-grpc's aio server interceptor, which
fails every stream written with context.write (gRPC health's Watch):
open-telemetry/opentelemetry-python-contrib#3066. With tracing off, no span
is made and no context attached (measured: attaching it cost the demo store
8-13% of its calls/s): the access log's line, when one is written, reads the
caller's trace id from its headers then. With tracing disabled
(OTEL_SDK_DISABLED) not even that: its lines carry "-".
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import grpc
from opentelemetry import context as otel_context
from opentelemetry.trace import Span, StatusCode, set_span_in_context
from prometheus_client import Histogram

from events.tracing import (
    SpanKind,
    extracted,
    trace_id_in,
    tracer,
    tracing_disabled,
    tracing_on,
)
from recommender.auth import OPEN_PREFIXES, TokenCheck

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

# What grpc.aio calls for a method: a coroutine function (returning the
# answer, or writing a stream with context.write, as health's Watch does) or
# an async generator for a stream of responses. grpc's stubs describe the
# synchronous server's behaviours, so these are cast to what aio gives.
_Context = grpc.aio.ServicerContext[Any, Any]
_Answer = Callable[[Any, _Context], Awaitable[Any]]
# A call's metadata as grpc.aio gives it: (key, value) pairs.
_Metadata = grpc.aio.Metadata | tuple[()]
_Stream = Callable[[Any, _Context], AsyncIterator[Any]]
if TYPE_CHECKING:
    _Handler = grpc.RpcMethodHandler[Any, Any]
else:  # generic in grpc's stubs only
    _Handler = grpc.RpcMethodHandler
Wrap = Callable[[str, _Handler], _Handler]


class WrappingServer:
    """Stands in for the server while services register: each of their method
    handlers reaches the server wrapped by ``wrap(method, handler)``.

    ``add_XServicer_to_server(servicer, WrappingServer(server, wrap))`` works
    as with the server itself.
    """

    def __init__(self, server: grpc.aio.Server, wrap: Wrap) -> None:
        self._server = server
        self._wrap = wrap

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(
            tuple(_WrappedGeneric(handler, self._wrap) for handler in handlers)
        )

    def add_registered_method_handlers(
        self, service: str, handlers: Mapping[str, _Handler]
    ) -> None:
        self._server.add_registered_method_handlers(
            service, {name: self._wrap(f"/{service}/{name}", h) for name, h in handlers.items()}
        )


class _WrappedGeneric(grpc.GenericRpcHandler):
    """A generic handler whose method handlers come out wrapped, each once."""

    def __init__(self, inner: grpc.GenericRpcHandler, wrap: Wrap) -> None:
        self._inner = inner
        self._wrap = wrap
        # Method -> (the handler as served, the same wrapped).
        self._wrapped: dict[str, tuple[_Handler, _Handler]] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> _Handler | None:
        handler = self._inner.service(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        known = self._wrapped.get(method)
        if known is None or known[0] is not handler:
            known = self._wrapped[method] = (handler, self._wrap(method, handler))
        return known[1]


class CallPolicy:
    """Traces and measures every call, logs the ones asked for (method, status
    code, duration, peer; the line carries the call's trace id), and, with a
    ``token``, refuses every call without it but health checks.

    With ``every_call`` each call has its INFO line; otherwise only a call
    that failed or took ``slow_seconds`` or more does, and the others are
    DEBUG lines (formatted only when DEBUG is on). Refused calls are logged
    and measured too.

    ``traced=False`` (by default, when OTEL_SDK_DISABLED is true): calls do
    not continue their caller's trace; their lines carry "-".
    """

    def __init__(
        self,
        *,
        every_call: bool = False,
        slow_seconds: float = DEFAULT_SLOW_SECONDS,
        token: TokenCheck | None = None,
        traced: bool | None = None,
    ) -> None:
        self.every_call = every_call
        self.slow_seconds = slow_seconds
        self.token = token
        self.traced = not tracing_disabled() if traced is None else traced
        # Label lookups cost more than the observation: one child per (method, code).
        self._latency: dict[tuple[str, str], Any] = {}

    def wrap(self, method: str, handler: _Handler) -> _Handler:
        observe = self._observer(method)
        guard = None if self.token is None or method.startswith(OPEN_PREFIXES) else self._guard

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
                done = observe(context)
                try:
                    if guard is not None:
                        await guard(context)
                    async for response in stream(request, context):
                        yield response
                except BaseException as exc:
                    done(exc)
                    raise
                done(None)

            wrapped = wrapped_stream
        else:
            answer = cast(_Answer, behavior)

            async def wrapped_answer(request: Any, context: _Context) -> Any:
                done = observe(context)
                try:
                    if guard is not None:
                        await guard(context)
                    response = await answer(request, context)
                except BaseException as exc:
                    done(exc)
                    raise
                done(None)
                return response

            wrapped = wrapped_answer

        return method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    async def _guard(self, context: _Context) -> None:
        """Ends the call UNAUTHENTICATED unless it carries the token."""
        assert self.token is not None  # wrap() asks only with a token
        problem = self.token.problem(tuple(context.invocation_metadata() or ()))
        if problem is not None:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, problem)

    def _observer(
        self, method: str
    ) -> Callable[[_Context], Callable[[BaseException | None], None]]:
        """For ``method``: what starts observing a call, and returns what ends it."""
        service, _, name = method[1:].rpartition("/")
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
        quiet = method.startswith(QUIET_PREFIXES)
        traced = self.traced

        def finish(
            peer: str, started: float, code: grpc.StatusCode | str, caller: _Metadata | None
        ) -> None:
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
                    # The call's trace id is the line's: its span's (events.tracing.
                    # TraceIdFilter), or with tracing off the one its caller sent.
                    "rpc method=%s code=%s duration_ms=%.2f peer=%s%s",
                    method,
                    name,
                    elapsed * 1000,
                    peer,
                    " slow" if elapsed >= self.slow_seconds else "",
                    extra=None if caller is None else {"trace_id": trace_id_in(dict(caller))},
                )

        def begin(context: _Context) -> Callable[[BaseException | None], None]:
            started = time.perf_counter()
            # Read while the call is live, never after: once a call is cancelled
            # its connection can be freed, and peer() then reads freed memory in
            # gRPC core (grpc/grpc#29069): any client could crash the server.
            peer = context.peer()
            span: Span | None = None
            token = None
            caller: _Metadata | None = None
            if traced:
                # The caller's trace, in its W3C headers (traceparent, tracestate).
                metadata = context.invocation_metadata() or ()
                if tracing_on():
                    called = extracted(dict(metadata))
                    span = tracer.start_span(
                        method[1:], context=called, kind=SpanKind.SERVER, attributes=attributes
                    )
                    token = otel_context.attach(set_span_in_context(span, called))
                else:
                    # Off, nothing is recorded: the caller's trace only names
                    # the call's log line, read from its headers if one is written.
                    caller = metadata

            def end(exc: BaseException | None) -> None:
                code = _outcome(context, exc)
                if span is not None:
                    _traced(span, code, exc)
                finish(peer, started, code, caller)
                if token is not None:
                    otel_context.detach(token)
                if span is not None:
                    span.end()

            return end

        return begin


def _outcome(context: _Context, exc: BaseException | None) -> grpc.StatusCode | str:
    if exc is None or isinstance(exc, grpc.aio.AbortError):
        return context.code() or grpc.StatusCode.OK
    if isinstance(exc, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return "UNKNOWN"  # an uncaught exception: gRPC answers UNKNOWN


def _traced(span: Span, code: grpc.StatusCode | str, exc: BaseException | None) -> None:
    status = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
    span.set_attribute("rpc.grpc.status_code", status.value[0])
    if status is not grpc.StatusCode.OK:
        span.set_status(StatusCode.ERROR, status.name)
    if code == "UNKNOWN" and isinstance(exc, Exception):
        span.record_exception(exc)  # the servicer's own failure
