"""The bare baseline's consumers: the same ConsumerStep, queues, prefetch and
batching, each message only noted (event id, consumer, time) and acked.

BENCH_CONSUMERS_FACTORY=bench.ack_only:consumers, BENCH_ACK_LOG=<file>
"""

from __future__ import annotations

import os
import time
from typing import ClassVar, TextIO

from django.conf import settings
from kombu import Message

from events.celery_consumer import EventConsumers, QueueDriver
from events.consuming import Delivery, Handler
from marketplace_site.event_handlers import event_topology, worker_handlers


class AckOnly(QueueDriver[Handler]):
    log: ClassVar[TextIO]

    def run_batch(self, batch: list[tuple[Message, Delivery]]) -> None:
        for _, delivery in batch:
            message_id = delivery.properties.get("message_id")
            self.log.write(f"{message_id} {self.core.consumer} {time.time()}\n")
        # One "multiple" ack for the batch, as the step settles one.
        batch[-1][0].ack(multiple=True)


def consumers() -> EventConsumers[Handler]:
    ack_only: EventConsumers[Handler] = EventConsumers(
        topology=event_topology(),
        handlers=worker_handlers(),
        apply_batch=lambda consumer, events, handler: set(),
        prefetch=settings.EVENTS_PREFETCH,
        batch_size=settings.EVENTS_BATCH_SIZE,
        batch_wait=settings.EVENTS_BATCH_WAIT_MS / 1000,
    )
    AckOnly.log = open(os.environ["BENCH_ACK_LOG"], "a", buffering=1)  # noqa: SIM115
    ack_only.driver = AckOnly
    return ack_only
