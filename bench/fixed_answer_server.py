"""The recommender's own server with the ranking taken out: every call is
answered with the same ten books of the store, found once.

Next to the echo server (an empty answer) and the recommender, it splits
the gap between them: what a ten-book answer costs gRPC and protobuf here,
and what is left, the engine's ranking.

python -m bench.fixed_answer_server   (RECOMMENDER_LISTEN, RECOMMENDER_DB)
"""

from __future__ import annotations

import asyncio
import itertools
import logging

from bench.procs import until_terminated
from events.log_format import configure_logging
from recommender.config import Settings
from recommender.engine import Reason, Recommendation
from recommender.server import start_server
from recommender.store import Store

log = logging.getLogger("recommender")
ANSWER_SIZE = 10


class FixedAnswer:
    """Stands in for RecommendationIndex: the same answer, whatever is asked."""

    def __init__(self, answer: list[Recommendation]) -> None:
        self.answer = answer

    def recommend(self, *, user_id: int, category: int, max_results: int) -> list[Recommendation]:
        return self.answer[:max_results]


async def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level)
    with Store(settings.db_path) as store:
        books = list(itertools.islice(store.books(), ANSWER_SIZE))
    answer = [Recommendation(book, Reason.BOUGHT_TOGETHER) for book in books]
    # With RECOMMENDER_TLS_* set, over TLS, as the recommender would be.
    running = await start_server(
        listen=settings.listen,
        index=FixedAnswer(answer),  # type: ignore[arg-type]
        tls=settings.tls,
    )
    log.info("serving on 127.0.0.1:%d", running.port)
    log.info("ready")
    await until_terminated()
    await running.drain(grace=1)


if __name__ == "__main__":
    asyncio.run(main())
