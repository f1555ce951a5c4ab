"""The barest baseline of the recommender: a grpc.aio server with no
interceptor, no health, no reflection and no logging, answering every
unary call with the same bytes: the ten-book answer of the store,
serialized once (the size of the recommender's answer).

python -m bench.bare_server   (RECOMMENDER_LISTEN, RECOMMENDER_DB, optional
RECOMMENDER_TLS_CERT / _KEY / _CLIENT_CA for mutual TLS)

Prints "serving on 127.0.0.1:PORT" and "bare server ready" to stdout (the harness reads
them); nothing else.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import grpc

from bench.procs import until_terminated
from recommender.config import Settings
from recommender.engine import Reason, Recommendation
from recommender.server import server_credentials
from recommender.servicer import to_response
from recommender.store import Store

ANSWER_SIZE = 10


def fixed_reply(settings: Settings) -> bytes:
    """The first ten books of the store, as the recommender would answer them."""
    with Store(settings.db_path) as store:
        books = list(itertools.islice(store.books(), ANSWER_SIZE))
    answer = [Recommendation(book, Reason.BOUGHT_TOGETHER) for book in books]
    return to_response(answer).SerializeToString()


class AnyUnary(grpc.GenericRpcHandler):
    """Every method answered with ``reply``: requests are taken as bytes, unread."""

    def __init__(self, reply: bytes) -> None:
        async def answer(request: bytes, context: Any) -> bytes:
            return reply

        self.handler: Any = grpc.unary_unary_rpc_method_handler(answer)

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        return self.handler


async def main() -> None:
    settings = Settings.from_env()
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((AnyUnary(fixed_reply(settings)),))
    tls = settings.tls
    if tls is None:
        port = server.add_insecure_port(settings.listen)
    else:
        port = server.add_secure_port(settings.listen, server_credentials(tls))
    await server.start()
    print(f"serving on 127.0.0.1:{port}", flush=True)
    print("bare server ready", flush=True)
    await until_terminated()
    await server.stop(0)


if __name__ == "__main__":
    asyncio.run(main())
