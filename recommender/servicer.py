"""The gRPC edge: protobuf in, a plain call into the engine, protobuf out."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

import grpc
from google.protobuf.message import DecodeError

from bookstore.recommendations.v1 import recommendations_pb2 as pb
from bookstore.recommendations.v1 import recommendations_pb2_grpc as pb_grpc
from recommender.engine import InvalidRequest, Recommendation, RecommendationIndex

V1_SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Recommendations"].full_name
# The seed tutorial's proto has no package, so its clients call this name.
LEGACY_SERVICE_NAME = "Recommendations"


class NotReady(RuntimeError):
    """The index is not loaded yet."""


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A request whose bytes are not a RecommendationRequest."""

    error: str


def parse_request(data: bytes) -> pb.RecommendationRequest | Undecodable:
    """Never raises: gRPC would answer UNKNOWN for a deserializer's exception,
    while bad bytes are the caller's mistake, INVALID_ARGUMENT."""
    try:
        return pb.RecommendationRequest.FromString(data)
    except DecodeError as exc:
        return Undecodable(str(exc) or "malformed protobuf")


def to_response(recommendations: list[Recommendation]) -> pb.RecommendationResponse:
    response = pb.RecommendationResponse()
    # add() builds each entry in place: no message made and then copied in.
    add = response.recommendations.add
    for r in recommendations:
        book, bought_with = r.book, r.bought_with
        add(
            id=book.id,
            title=book.title,
            author=book.author,
            category=int(book.category),
            reason=int(r.reason),
            bought_with_id=bought_with.id if bought_with else 0,
            bought_with_title=bought_with.title if bought_with else "",
        )
    return response


class RecommendationsServicer(pb_grpc.RecommendationsServicer):
    def __init__(self, index: RecommendationIndex | None = None) -> None:
        # None while the store is loading or catching up on the history:
        # calls get UNAVAILABLE, which clients retry, and health says NOT_SERVING.
        self.index = index

    def _answer(self, request: pb.RecommendationRequest | Undecodable) -> pb.RecommendationResponse:
        if isinstance(request, Undecodable):
            raise InvalidRequest(f"the request is not a RecommendationRequest: {request.error}")
        if self.index is None:
            raise NotReady(
                "the recommender is still loading its store or catching up on the event history"
            )
        return to_response(
            self.index.recommend(
                user_id=request.user_id,
                category=request.category,
                max_results=request.max_results,
            )
        )

    async def Recommend(
        self,
        request: pb.RecommendationRequest,
        context: grpc.aio.ServicerContext[pb.RecommendationRequest, pb.RecommendationResponse],
    ) -> pb.RecommendationResponse:
        try:
            return self._answer(request)
        except InvalidRequest as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except NotReady as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))

    async def RecommendStream(
        self,
        request_iterator: AsyncIterable[pb.RecommendationRequest],
        context: grpc.aio.ServicerContext[pb.RecommendationRequest, pb.RecommendationResponse],
    ) -> AsyncIterator[pb.RecommendationResponse]:
        # Counted as a person counts them: the stream's first request is #1.
        position = 1
        async for request in request_iterator:
            try:
                response = self._answer(request)
            except InvalidRequest as exc:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request #{position}: {exc}")
            except NotReady as exc:
                await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            yield response
            position += 1


def legacy_handler(servicer: RecommendationsServicer) -> grpc.GenericRpcHandler:
    """The tutorial's service name, answered by the same handler.

    Its messages share field numbers with v1, so v1's (de)serializers read
    them; the fields it does not know (author, ...) are skipped by old clients.
    """
    return grpc.method_handlers_generic_handler(
        LEGACY_SERVICE_NAME,
        {
            "Recommend": grpc.unary_unary_rpc_method_handler(
                servicer.Recommend,
                request_deserializer=parse_request,
                response_serializer=pb.RecommendationResponse.SerializeToString,
            )
        },
    )


def v1_handler(servicer: RecommendationsServicer) -> grpc.GenericRpcHandler:
    """The v1 service, as the generated registration would add it, but with
    requests decoded by parse_request so undecodable bytes are our answer."""
    return grpc.method_handlers_generic_handler(
        V1_SERVICE_NAME,
        {
            "Recommend": grpc.unary_unary_rpc_method_handler(
                servicer.Recommend,
                request_deserializer=parse_request,
                response_serializer=pb.RecommendationResponse.SerializeToString,
            ),
            "RecommendStream": grpc.stream_stream_rpc_method_handler(
                servicer.RecommendStream,
                request_deserializer=parse_request,
                response_serializer=pb.RecommendationResponse.SerializeToString,
            ),
        },
    )
