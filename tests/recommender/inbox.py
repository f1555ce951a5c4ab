"""What the recommender's store recorded in its inbox, for tests."""

from __future__ import annotations

from recommender.store import Store


def is_applied(store: Store, event_id: str) -> bool:
    """Whether the store's inbox holds ``event_id``."""
    row = store._db.execute("SELECT 1 FROM inbox WHERE event_id = ?", (event_id,)).fetchone()
    return row is not None
