"""A large synthetic store for scale checks and benchmarks (not demo data).

Popularity is skewed (a few books sell a lot, most sell little) and orders
hold one to four books, like a real shop's history.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from recommender.engine import Book, Category, Purchase
from recommender.store import Store

CATEGORIES = list(Category)


def synthetic_books(count: int) -> Iterator[Book]:
    for book_id in range(1, count + 1):
        category = CATEGORIES[book_id % len(CATEGORIES)]
        yield Book(book_id, f"Synthetic book {book_id}", f"Author {book_id % 9973}", category)


def synthetic_purchases(
    *, books: int, purchases: int, users: int, seed: int = 1
) -> Iterator[Purchase]:
    rng = random.Random(seed)
    made, order_id = 0, 0
    while made < purchases:
        order_id += 1
        user_id = rng.randint(1, users)
        size = min(rng.choice((1, 1, 2, 2, 3, 4)), purchases - made)
        # Log-uniform ranks give a long tail (rank 1 sells most); the
        # multiplication scatters popular ranks over ids and categories.
        ranks = {int(books ** rng.random()) for _ in range(size)}
        for book_id in sorted((rank * 7919) % books + 1 for rank in ranks):
            yield Purchase(order_id, user_id, book_id, rng.choice((1, 1, 1, 2)))
            made += 1


def write_synthetic_store(
    path: Path, *, books: int, purchases: int, users: int | None = None, seed: int = 1
) -> None:
    with Store(path) as store:
        store.upsert_books(synthetic_books(books))
        store.add_purchases(
            synthetic_purchases(
                books=books, purchases=purchases, users=users or max(1, books), seed=seed
            )
        )
