"""The cart: book ids and quantities kept in the visitor's session.

Only ids and quantities are stored; prices are always read from the catalog,
so nothing a browser sends can change what a book costs.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

SESSION_KEY = "cart"
MAX_QUANTITY = 20


class Cart:
    def __init__(self, session: MutableMapping[str, Any]) -> None:
        self._session = session
        raw = session.get(SESSION_KEY)
        self._items: dict[str, int] = dict(raw) if isinstance(raw, dict) else {}

    def items(self) -> dict[int, int]:
        return {int(book_id): qty for book_id, qty in self._items.items()}

    def quantity(self, book_id: int) -> int:
        return self._items.get(str(book_id), 0)

    def __len__(self) -> int:
        return sum(self._items.values())

    def __bool__(self) -> bool:
        return bool(self._items)

    def set(self, book_id: int, quantity: int) -> None:
        if quantity <= 0:
            self._items.pop(str(book_id), None)
        else:
            self._items[str(book_id)] = quantity
        self._save()

    def clear(self) -> None:
        self._items = {}
        self._save()

    def _save(self) -> None:
        self._session[SESSION_KEY] = self._items
