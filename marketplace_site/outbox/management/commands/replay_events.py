from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.contracts import PAYLOAD_TYPES
from events.operators import NoSuchQueue, consumer_queues, send_to_queue
from marketplace_site.event_handlers import event_topology
from marketplace_site.outbox.selectors import outbox_sent_events


class Command(BaseCommand):
    help = (
        "Send the events the relay has published, oldest first, to one consumer's queue"
        " only: a new recommender replica learns the catalog and every past purchase. The"
        " consumer's inbox makes an event it already applied a no-op."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--consumer",
            required=True,
            help="recommender.<instance> (its queue must exist: start the replica first)"
            " or a worker consumer, e.g. worker.campaigns",
        )
        parser.add_argument(
            "--type",
            action="append",
            dest="types",
            default=[],
            choices=sorted(PAYLOAD_TYPES),
            help="only events of this type (repeatable; default: every type)",
        )

    def handle(self, *args: Any, consumer: str, types: list[str], **options: Any) -> None:
        try:
            [spec] = consumer_queues(event_topology(), consumer)
        except (KeyError, ValueError) as exc:
            raise CommandError(f"unknown consumer {consumer!r}: {exc}") from None
        try:
            sent = send_to_queue(settings.AMQP_URL, spec, outbox_sent_events(types))
        except NoSuchQueue as exc:
            raise CommandError(f"{exc} (is the consumer running?); nothing was sent") from None
        self.stdout.write(f"sent {sent} past event(s) to {spec.name}")
