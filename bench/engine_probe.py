"""The ranking engine alone, in its own process: build the index from a store,
then time recommend() calls: a first pass, a second one, one with the CPU
caches emptied before every call, and one while the index learns (a purchase
between every LEARNING_CALLS calls).

python -m bench.engine_probe STORE CALLS USERS   (prints one JSON line)
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from collections.abc import Callable
from itertools import islice
from pathlib import Path

from recommender.engine import Purchase, RecommendationIndex
from recommender.store import Store

# Calls per purchase while learning: a shop sells far less often than it
# shows recommendations, but every sale changes what the next call sees.
LEARNING_CALLS = 10
NEW_ORDERS_FROM = 2**62
# Copied before each call of the evicted pass: more than a core's L2 cache, so
# the call finds the index, and the interpreter's own state, out of the caches
# and the TLB, as a call in the server does after gRPC's work for the others.
EVICTION_BYTES = 8 << 20


def timed_calls(
    index: RecommendationIndex,
    calls: int,
    users: int,
    seed: int,
    before_each: Callable[[], object] | None = None,
) -> list[float]:
    rng = random.Random(seed)
    latencies = []
    for _ in range(calls):
        user, category = rng.randint(1, users), rng.randrange(7)
        if before_each is not None:
            before_each()
        started = time.perf_counter()
        index.recommend(user_id=user, category=category, max_results=10)
        latencies.append(time.perf_counter() - started)
    return latencies


def past_sales(store: Store) -> list[Purchase]:
    """Every 97th purchase of the history: drawn from it, best sellers sell more."""
    return list(islice(store.purchases(), 0, None, 97))


def learning_calls(
    index: RecommendationIndex, sales: list[Purchase], calls: int, users: int, seed: int
) -> list[float]:
    """Timed calls, each LEARNING_CALLS-th after a sale: a past purchase's
    customer and book, in an order of its own."""
    rng = random.Random(seed)
    latencies = []
    for n in range(calls):
        if n % LEARNING_CALLS == 0:
            past = rng.choice(sales)
            order_id = NEW_ORDERS_FROM + n  # after every past order, as new ones come
            index.add_purchase(Purchase(order_id, past.user_id, past.book_id, past.quantity))
        user, category = rng.randint(1, users), rng.randrange(7)
        started = time.perf_counter()
        index.recommend(user_id=user, category=category, max_results=10)
        latencies.append(time.perf_counter() - started)
    return latencies


def main(argv: list[str]) -> None:
    store_path, calls, users = Path(argv[0]), int(argv[1]), int(argv[2])
    started = time.perf_counter()
    with Store(store_path) as store:
        index = RecommendationIndex.build(store.books(), store.purchases())
        build = time.perf_counter() - started
        sales = past_sales(store)
    cold = timed_calls(index, calls, users, seed=1)
    warm = timed_calls(index, calls, users, seed=1)
    evicted = timed_calls(index, calls, users, seed=1, before_each=bytearray(EVICTION_BYTES).copy)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    learning = learning_calls(index, sales, calls, users, seed=2)
    print(
        json.dumps(
            {
                "build_seconds": build,
                "cold": cold,
                "warm": warm,
                "evicted": evicted,
                "learning": learning,
                "peak_rss_mb": rss,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
