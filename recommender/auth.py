"""A shared token on internal RPCs (RECOMMENDER_AUTH_TOKEN).

A second lock beside mutual TLS, or the only one where TLS ends at a proxy:
every call must carry ``authorization: Bearer <token>``, except health checks,
which probes make without credentials. The token is compared in constant time
and never logged; a caller without it gets UNAUTHENTICATED and a reason.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

AUTHORIZATION = "authorization"
SCHEME = "bearer"
# Load balancers and container health checks probe without credentials.
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)

MISSING = "missing credentials: send metadata 'authorization: Bearer <token>'"
INVALID = "invalid credentials: the bearer token was not accepted"


def _refusal(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same kind as ``handler`` that answers UNAUTHENTICATED."""

    async def refuse(_request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    # Streaming responses as an async generator, as the servicer's are (the
    # access log iterates them).
    async def refuse_stream(_request: Any, context: grpc.aio.ServicerContext) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
        yield  # never reached: makes this a generator

    if handler.unary_unary:
        make, behavior = grpc.unary_unary_rpc_method_handler, refuse
    elif handler.stream_unary:
        make, behavior = grpc.stream_unary_rpc_method_handler, refuse
    elif handler.unary_stream:
        make, behavior = grpc.unary_stream_rpc_method_handler, refuse_stream
    else:
        make, behavior = grpc.stream_stream_rpc_method_handler, refuse_stream
    return make(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


class TokenAuthInterceptor(grpc.aio.ServerInterceptor):
    """Refuses every call without the shared bearer token, health checks aside."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("an empty token would let everyone in")
        self._expected = token.encode()

    def __repr__(self) -> str:  # the token stays out of any log of the server's parts
        return f"{type(self).__name__}(token=***)"

    def _problem(self, metadata: tuple[tuple[str, Any], ...]) -> str | None:
        values = [value for key, value in metadata if key == AUTHORIZATION]
        if not values:
            return MISSING
        scheme, _, presented = str(values[-1]).strip().partition(" ")
        if scheme.lower() != SCHEME:
            return MISSING
        # Constant time: how long a refusal takes tells nothing about the token.
        if not hmac.compare_digest(presented.strip().encode(), self._expected):
            return INVALID
        return None

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_PREFIXES):
            return handler
        problem = self._problem(tuple(handler_call_details.invocation_metadata or ()))
        return handler if problem is None else _refusal(handler, problem)
