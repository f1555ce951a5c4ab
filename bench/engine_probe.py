"""The ranking engine alone, in its own process: build the index from a store,
then time recommend() calls (a cold pass, then a warm one).

python -m bench.engine_probe STORE CALLS USERS   (prints one JSON line)
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from pathlib import Path

from recommender.engine import RecommendationIndex
from recommender.store import Store


def timed_calls(index: RecommendationIndex, calls: int, users: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    latencies = []
    for _ in range(calls):
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
    cold = timed_calls(index, calls, users, seed=1)
    warm = timed_calls(index, calls, users, seed=1)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"build_seconds": build, "cold": cold, "warm": warm, "peak_rss_mb": rss}))


if __name__ == "__main__":
    main(sys.argv[1:])
