"""Deliveries into a recommender store through the consumer core, without a broker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from events.consuming import Decision, Delivery, EventQueue
from recommender.events_consumer import (
    CONSUMER,
    TRANSLATORS,
    Changes,
    StoreApplier,
    Translator,
)
from recommender.store import Store


@dataclass(frozen=True, slots=True)
class Applied:
    # One per delivery, in their order.
    outcomes: list[Decision]
    # What the index must learn, in the order the store committed it.
    learned: list[Changes]


@dataclass(frozen=True, slots=True)
class Handled:
    outcome: Decision
    # What the index must learn; None unless the event was new to the store.
    learned: Changes | None = None


def apply_deliveries(
    store: Store, deliveries: Sequence[Delivery], *, delivery_limit: int
) -> Applied:
    applier = StoreApplier(store)
    queue: EventQueue[Translator, Delivery] = EventQueue(
        consumer=CONSUMER,
        queue=f"test.{CONSUMER}",
        handlers=TRANSLATORS,
        apply_batch=applier,
        delivery_limit=delivery_limit,
    )
    return Applied(queue.decide(deliveries), applier.take_learned())


def apply_delivery(
    store: Store, *, body: bytes, headers: Mapping[str, object] | None, delivery_limit: int
) -> Handled:
    applied = apply_deliveries(store, [Delivery(body, headers)], delivery_limit=delivery_limit)
    return Handled(applied.outcomes[0], applied.learned[0] if applied.learned else None)
