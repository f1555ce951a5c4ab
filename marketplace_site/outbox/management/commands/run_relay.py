from __future__ import annotations

import asyncio
import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from events.metrics import relay_published, serve_metrics
from events.relay import Relay
from marketplace_site.event_handlers import event_topology
from marketplace_site.outbox.relay_source import DjangoOutboxSource
from marketplace_site.outbox.wakeups import OutboxWakeups, notifications_supported

log = logging.getLogger("marketplace_site.relay")


class Command(BaseCommand):
    help = "Publish the outbox to RabbitMQ until SIGTERM / Ctrl-C. Safe to run twice."

    def handle(self, *args: object, **options: object) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        wakeup, wakeups = None, None
        if notifications_supported():
            # Woken by each commit; the poll is a safety net for a lost notification.
            wakeup = asyncio.Event()
            wakeups = OutboxWakeups(loop, wakeup).start()
        relay = Relay(
            source_factory=DjangoOutboxSource,
            amqp_url=settings.AMQP_URL,
            topology=event_topology(),
            batch_size=settings.RELAY_BATCH_SIZE,
            poll_interval=(
                settings.RELAY_SAFETY_POLL_INTERVAL if wakeups else settings.RELAY_POLL_INTERVAL
            ),
            on_published=relay_published,
            wakeup=wakeup,
        )
        serve_metrics(
            settings.RELAY_METRICS_PORT,
            address=settings.METRICS_ADDR,
            variable="RELAY_METRICS_PORT",
        )
        log.info("relay started (namespace %s)", settings.EVENTS_NAMESPACE)
        try:
            await relay.run(stop)
        finally:
            if wakeups is not None:
                await asyncio.to_thread(wakeups.stop)
            await relay.close()
        log.info("relay stopped after publishing %d events", relay.published)
