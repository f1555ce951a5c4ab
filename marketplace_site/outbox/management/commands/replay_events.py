from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from events.contracts import PAYLOAD_TYPES
from events.operators import NoSuchQueue, consumer_queues, send_to_queue
from events.topology import QueueSpec, StreamSpec
from marketplace_site.event_handlers import event_topology
from marketplace_site.outbox.selectors import outbox_sent_events


class Command(BaseCommand):
    help = (
        "Send the events the relay has published, oldest first, to one consumer's queue"
        " only (a recommender replica learns the catalog and every past purchase), or to"
        " the history stream. An event a consumer already applied is a no-op to its inbox."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument(
            "--consumer",
            help="recommender.<instance> (its queue must exist: start the replica first)"
            " or a worker consumer, e.g. worker.campaigns",
        )
        target.add_argument(
            "--history",
            action="store_true",
            help="the history stream, once, after upgrading from a relay that did not declare"
            " it: replicas added later then learn what came before too",
        )
        parser.add_argument(
            "--type",
            action="append",
            dest="types",
            default=[],
            choices=sorted(PAYLOAD_TYPES),
            help="only events of this type (repeatable; default: every type, for the history"
            " every type it keeps)",
        )

    def handle(
        self, *args: Any, consumer: str | None, history: bool, types: list[str], **options: Any
    ) -> None:
        topology = event_topology()
        spec: QueueSpec | StreamSpec
        if history:
            spec = topology.history
            kept = set(spec.routing_keys)
            if not kept.issuperset(types):
                raise CommandError(f"the history keeps only {', '.join(sorted(kept))} events")
            types = types or sorted(kept)
            missing = "has the relay run since it was upgraded?"
        else:
            try:
                [spec] = consumer_queues(topology, consumer)
            except (KeyError, ValueError) as exc:
                raise CommandError(f"unknown consumer {consumer!r}: {exc}") from None
            missing = "is the consumer running?"
        try:
            sent = send_to_queue(settings.AMQP_URL, spec, outbox_sent_events(types))
        except NoSuchQueue as exc:
            raise CommandError(f"{exc} ({missing}); nothing was sent") from None
        self.stdout.write(f"sent {sent} past event(s) to {spec.name}")
