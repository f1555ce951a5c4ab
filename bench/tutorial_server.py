"""What the seed tutorial builds (Real Python, "Python Microservices With
gRPC"): a synchronous ``grpc.server`` on a ten-thread pool serving the
tutorial's contract (protos/bookstore/legacy) from fixed lists of books per
category, answering with ``random.sample``; mutual TLS as its last chapter
sets it up. The lists are the demo catalog's books of the tutorial's three
categories, so an answer of ten books is possible and the size of ours.

python -m bench.tutorial_server   (RECOMMENDER_LISTEN, optional
RECOMMENDER_TLS_CERT / _KEY / _CLIENT_CA)
"""

from __future__ import annotations

import random
import signal
import threading
from concurrent import futures
from typing import Any

import grpc

from bookstore.legacy import recommendations_pb2 as pb
from bookstore.legacy import recommendations_pb2_grpc as pb_grpc
from recommender.catalog_file import read_catalog
from recommender.config import DEMO_CATALOG, Settings


def books_by_category() -> dict[int, list[pb.BookRecommendation]]:
    lists: dict[int, list[pb.BookRecommendation]] = {
        category: [] for category in pb.BookCategory.values()
    }
    for book in read_catalog(DEMO_CATALOG):
        if int(book.category) in lists:
            lists[int(book.category)].append(pb.BookRecommendation(id=book.id, title=book.title))
    return lists


class RecommendationService(pb_grpc.RecommendationsServicer):
    def __init__(self, books: dict[int, list[pb.BookRecommendation]]) -> None:
        self.books = books

    def Recommend(
        self, request: pb.RecommendationRequest, context: Any
    ) -> pb.RecommendationResponse:
        if request.category not in self.books:
            context.abort(grpc.StatusCode.NOT_FOUND, "Category not found")
        books_for_category = self.books[request.category]
        num_results = min(request.max_results, len(books_for_category))
        books_to_recommend = random.sample(books_for_category, num_results)
        return pb.RecommendationResponse(recommendations=books_to_recommend)


def main() -> None:
    settings = Settings.from_env()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    pb_grpc.add_RecommendationsServicer_to_server(
        RecommendationService(books_by_category()), server
    )
    tls = settings.tls
    if tls is None:
        port = server.add_insecure_port(settings.listen)
    else:
        credentials = grpc.ssl_server_credentials(
            [(tls.key.read_bytes(), tls.cert.read_bytes())],
            root_certificates=tls.client_ca.read_bytes() if tls.client_ca else None,
            require_client_auth=tls.client_ca is not None,
        )
        port = server.add_secure_port(settings.listen, credentials)
    server.start()
    print(f"serving on 127.0.0.1:{port}", flush=True)
    print("tutorial server ready", flush=True)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.stop(0)


if __name__ == "__main__":
    main()
