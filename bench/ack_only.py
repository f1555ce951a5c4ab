"""The bare baseline's consumers: the same ConsumerStep, queues, prefetch and
batching, each message only noted (event id, consumer, time) and acked.

BENCH_CONSUMERS_FACTORY=bench.ack_only:consumers, BENCH_ACK_LOG=<file>
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings

from events.celery_consumer import EventConsumers, ack_all
from events.dispatch import Handler
from events.topology import QueueSpec
from marketplace_site.event_handlers import ROUTES, event_topology


class AckOnly(EventConsumers):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.log = open(os.environ["BENCH_ACK_LOG"], "a", buffering=1)  # noqa: SIM115

    def handle(
        self,
        consumer_name: str,
        spec: QueueSpec,
        handlers: Mapping[str, Handler],
        messages: Sequence[Any],
    ) -> None:
        for message in messages:
            self.log.write(
                f"{message.properties.get('message_id')} {consumer_name} {time.time()}\n"
            )
        ack_all(messages)


def consumers() -> EventConsumers:
    return AckOnly(
        topology=event_topology(),
        routes=ROUTES,
        apply_batch=lambda consumer, events, handler: set(),
        prefetch=settings.EVENTS_PREFETCH,
        batch_size=settings.EVENTS_BATCH_SIZE,
        batch_wait=settings.EVENTS_BATCH_WAIT_MS / 1000,
    )
