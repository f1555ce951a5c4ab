"""How consumers park messages they cannot apply, the same way in every client.

A consumer that meets a malformed message, or a handler failure on the last
allowed delivery, republishes the message unchanged to the dead-letter
exchange (routing key: its queue's name) with the reason in headers, waits
for the broker's confirm, and only then acks the original. So a parked
message always says why, and nothing is lost between the two queues.
Failures before the last delivery are requeued; the queue's
``x-delivery-limit`` is the broker's backstop should a consumer die
mid-message over and over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

REASON_HEADER = "x-parked-reason"
CONSUMER_HEADER = "x-parked-by"
QUEUE_HEADER = "x-parked-from"
# Set by quorum queues on redeliveries: how many times it was delivered before.
DELIVERY_COUNT_HEADER = "x-delivery-count"


def deliveries_so_far(headers: Mapping[str, Any] | None) -> int:
    """Deliveries of this message before the current one (0 on the first)."""
    raw = (headers or {}).get(DELIVERY_COUNT_HEADER, 0)
    try:
        return int(raw)
    except (TypeError, ValueError):
        return 0


def is_last_delivery(headers: Mapping[str, Any] | None, delivery_limit: int) -> bool:
    """True when a failure now should park the message instead of requeueing it."""
    return deliveries_so_far(headers) + 1 >= delivery_limit


def parked_headers(
    headers: Mapping[str, Any] | None, *, reason: str, consumer: str, queue: str
) -> dict[str, Any]:
    return {
        **dict(headers or {}),
        REASON_HEADER: reason[:1000],
        CONSUMER_HEADER: consumer,
        QUEUE_HEADER: queue,
    }
