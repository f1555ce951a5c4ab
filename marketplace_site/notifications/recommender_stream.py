"""Many recommendation requests over one RecommendStream, for batch work.

Page views use recommendations.client (one cheap call, a breaker, a
fallback). A batch has no fallback: every request needs its answer, so any
failure raises RecommenderUnavailable and the caller's job fails loudly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc

from bookstore.recommendations.v1 import recommendations_pb2 as pb
from bookstore.recommendations.v1 import recommendations_pb2_grpc as pb_grpc
from events.contracts import book_category
from marketplace_site.recommendations.channel import ChannelSecurity
from marketplace_site.recommendations.client import (
    SERVICE_CONFIG,
    RecommendedBook,
    RecommenderUnavailable,
)


@dataclass(frozen=True, slots=True)
class BatchRequest:
    user_id: int
    category: int
    max_results: int


class StreamRecommender:
    def __init__(
        self, *, target: str, timeout: float, security: ChannelSecurity | None = None
    ) -> None:
        self.target = target
        # For the whole stream, not per request.
        self.timeout = timeout
        self.security = security or ChannelSecurity()

    def recommend_many(self, requests: Sequence[BatchRequest]) -> list[list[RecommendedBook]]:
        """One answer per request, in the requests' order."""
        messages = [
            pb.RecommendationRequest(
                user_id=r.user_id, category=book_category(r.category), max_results=r.max_results
            )
            for r in requests
        ]
        # A channel per batch, not per process: a weekly job gains nothing
        # from keeping one open, and a forked worker never inherits it.
        with self.security.open_channel(
            self.target, [("grpc.service_config", SERVICE_CONFIG), ("grpc.enable_retries", 1)]
        ) as channel:
            stream = pb_grpc.RecommendationsStub(channel).RecommendStream(
                iter(messages), timeout=self.timeout, metadata=self.security.metadata()
            )
            try:
                responses = list(stream)
            except grpc.RpcError as exc:
                raise RecommenderUnavailable(exc.code().name.lower(), exc.details() or "") from exc
        if len(responses) != len(messages):
            raise RecommenderUnavailable(
                "short_stream", f"{len(responses)} answers to {len(messages)} requests"
            )
        return [
            [RecommendedBook.from_proto(b) for b in response.recommendations]
            for response in responses
        ]
