from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from bookstore.recommendations.v1 import recommendations_pb2_grpc as pb_grpc
from recommender.engine import Book, Category, Purchase, RecommendationIndex
from recommender.server import RunningServer, start_server
from tests.grpc_server import ServerThread
from tests.recommender.process import recommender_process  # noqa: F401  (a fixture, shared)

M, SF, SH = Category.MYSTERY, Category.SCIENCE_FICTION, Category.SELF_HELP

BOOKS = [
    Book(1, "The Hound of the Baskervilles", "Arthur Conan Doyle", M),
    Book(2, "The Big Sleep", "Raymond Chandler", M),
    Book(3, "Gone Girl", "Gillian Flynn", M),
    Book(4, "In the Woods", "Tana French", M),
    Book(5, "Dune", "Frank Herbert", SF),
    Book(6, "Neuromancer", "William Gibson", SF),
    Book(7, "The Left Hand of Darkness", "Ursula K. Le Guin", SF),
    Book(8, "Atomic Habits", "James Clear", SH),
]

# Order 100 (user 1): Dune + Neuromancer bought together.
# Order 101 (user 2): Dune + Neuromancer again; order 102 (user 3): Dune alone.
# Order 103 (user 4): Gone Girl x2.
PURCHASES = [
    Purchase(100, 1, 5),
    Purchase(100, 1, 6),
    Purchase(101, 2, 5),
    Purchase(101, 2, 6),
    Purchase(102, 3, 5),
    Purchase(103, 4, 3, quantity=2),
]


@pytest.fixture
def index() -> RecommendationIndex:
    return RecommendationIndex.build(BOOKS, PURCHASES)


@dataclass
class LiveServer:
    running: RunningServer
    thread: ServerThread
    target: str
    channel: grpc.Channel

    @property
    def stub(self) -> pb_grpc.RecommendationsStub:
        return pb_grpc.RecommendationsStub(self.channel)


def _live_server(index: RecommendationIndex | None) -> Iterator[LiveServer]:
    thread = ServerThread()
    running = thread.run(start_server(listen="127.0.0.1:0", index=index))
    target = f"127.0.0.1:{running.port}"
    with grpc.insecure_channel(target) as channel:
        yield LiveServer(running, thread, target, channel)
    thread.run(running.server.stop(None))
    thread.close()


@pytest.fixture
def server(index: RecommendationIndex) -> Iterator[LiveServer]:
    yield from _live_server(index)


@pytest.fixture
def loading_server() -> Iterator[LiveServer]:
    """A server whose store has not finished loading."""
    yield from _live_server(None)
