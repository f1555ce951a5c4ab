"""The one place the marketplace talks to the recommender.

One channel per process, opened lazily in the process that uses it (so
gunicorn workers forked from a master each get their own); a deadline on
every call; retries of UNAVAILABLE only, by the channel's service config; a
circuit breaker so a dead recommender costs nothing after a few failures.
TLS, mutual TLS and the shared token come from a ChannelSecurity (channel.py).
Callers get plain values or RecommenderUnavailable, never a gRPC error.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from bookstore.recommendations.v1 import recommendations_pb2 as pb
from bookstore.recommendations.v1 import recommendations_pb2_grpc as pb_grpc
from events.contracts import book_category
from marketplace_site.recommendations.breaker import BreakerOpen, CircuitBreaker
from marketplace_site.recommendations.channel import ChannelSecurity

log = logging.getLogger(__name__)

SERVICE = "bookstore.recommendations.v1.Recommendations"
SERVICE_CONFIG = json.dumps(
    {
        # Replicas behind one DNS name (dns:///recommender:50051) share the load.
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [
            {
                "name": [{"service": SERVICE}],
                "retryPolicy": {
                    "maxAttempts": 3,
                    "initialBackoff": "0.01s",
                    "maxBackoff": "0.05s",
                    "backoffMultiplier": 2,
                    # Only a refused or dropped connection is safe to try again.
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ],
    }
)
CHANNEL_OPTIONS = (
    ("grpc.service_config", SERVICE_CONFIG),
    ("grpc.enable_retries", 1),
    # gRPC's reconnect backoff grows to 120 s while the recommender is down,
    # which kept pages on the fallback for minutes after it came back.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
)
# A client bug, not a sick recommender: it must not open the breaker.
NOT_A_FAILURE = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}


class RecommenderUnavailable(RuntimeError):
    """No answer from the recommender (down, slow, refusing, or the breaker is open)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RecommendedBook:
    id: int
    title: str
    author: str
    # Why the recommender picked it: a RecommendationReason value, and for
    # BOUGHT_TOGETHER the title of the customer's purchase it goes with.
    reason: int = pb.CATALOG
    bought_with_title: str = ""

    @classmethod
    def from_proto(cls, r: pb.BookRecommendation) -> RecommendedBook:
        return cls(r.id, r.title, r.author, r.reason, r.bought_with_title)


def _a_failure(exc: BaseException) -> bool:
    return not (isinstance(exc, grpc.RpcError) and exc.code() in NOT_A_FAILURE)


class RecommenderClient:
    def __init__(
        self,
        *,
        target: str,
        timeout: float,
        breaker_failures: int = 5,
        breaker_reset: float = 30.0,
        security: ChannelSecurity | None = None,
        on_breaker_change: Callable[[str, str], None] | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.security = security or ChannelSecurity()
        # The call that trips the breaker did reach the recommender: it raises
        # its own error (unavailable, deadline_exceeded), not "breaker_open".
        self.breaker = CircuitBreaker(
            fail_max=breaker_failures,
            reset_timeout=breaker_reset,
            is_failure=_a_failure,
            on_change=on_breaker_change,
        )
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._channel: grpc.Channel | None = None
        self._stub: pb_grpc.RecommendationsStub | None = None

    def _get_stub(self) -> pb_grpc.RecommendationsStub:
        pid = os.getpid()
        if self._pid != pid:
            with self._lock:
                if self._pid != pid:
                    # A channel inherited across fork() is unusable; start afresh.
                    self._channel = self.security.open_channel(self.target, CHANNEL_OPTIONS)
                    self._stub = pb_grpc.RecommendationsStub(self._channel)
                    self._pid = pid
        assert self._stub is not None
        return self._stub

    def channel(self) -> grpc.Channel:
        """The process's channel (opened if need be), for /readyz's health check."""
        self._get_stub()
        assert self._channel is not None
        return self._channel

    def close(self) -> None:
        with self._lock:
            if self._channel is not None and self._pid == os.getpid():
                self._channel.close()
            self._channel = self._stub = self._pid = None

    def recommend(self, *, user_id: int, category: int, max_results: int) -> list[RecommendedBook]:
        request = pb.RecommendationRequest(
            user_id=user_id, category=book_category(category), max_results=max_results
        )
        # The trace goes with the call: gRPC's instrumentation adds its headers.
        metadata = self.security.metadata()
        try:
            stub = self._get_stub()
        except OSError as exc:  # a certificate file gone since start-up
            raise RecommenderUnavailable("misconfigured", str(exc)) from exc
        try:
            response = self.breaker.call(
                stub.Recommend, request, timeout=self.timeout, metadata=metadata
            )
        except BreakerOpen as exc:
            raise RecommenderUnavailable("breaker_open", str(exc)) from exc
        except grpc.RpcError as exc:
            raise RecommenderUnavailable(exc.code().name.lower(), exc.details() or "") from exc
        return [RecommendedBook.from_proto(r) for r in response.recommendations]
