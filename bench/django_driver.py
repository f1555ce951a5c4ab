"""The Django side of the events and checkout hops, in its own process.

Configured like the relay and the worker (bench.site_settings, DATABASE_URL
to the bench's own PostgreSQL database); the harness drives it one JSON
command per line (bench.procs.Driver):

- setup: migrate, make the customers and the books checkouts use;
- insert: N PurchaseCompleted events into the outbox in one transaction;
- progress: how many consumer commits since the burst (cheap, polled);
- applied: what the worker did with those events (inbox rows, ledgers);
- envelopes: N envelopes for the bare baseline to publish itself;
- peer_burst: the conventional peer's burst: N purchases whose tasks are
  sent from on_commit of one transaction (bench.celery_peer);
- ledger, inbox_consumers: the kill test's effects, per order and per checkout;
- checkout: N order_checkout() calls, with or without the outbox, timed.
"""

from __future__ import annotations

import random
import time
import uuid
from typing import Any
from unittest import mock

import django

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402
from django.db.models import Count, Max, Q  # noqa: E402

from bench.celery_peer import dispatch_on_commit  # noqa: E402
from bench.hop_events import PURCHASE_CONSUMERS  # noqa: E402
from bench.procs import serve_commands  # noqa: E402
from bookstore.events.v1 import events_pb2  # noqa: E402
from events.contracts import PURCHASE_COMPLETED, book_category, wrap  # noqa: E402
from marketplace_site.campaigns.models import SaleLine  # noqa: E402
from marketplace_site.catalog.models import Book  # noqa: E402
from marketplace_site.inbox.models import InboxEvent  # noqa: E402
from marketplace_site.orders import services as order_services  # noqa: E402
from marketplace_site.orders.models import OrderLine  # noqa: E402
from marketplace_site.outbox import services as outbox_services  # noqa: E402
from marketplace_site.outbox.models import OutboxMessage  # noqa: E402
from marketplace_site.outbox.services import outbox_record  # noqa: E402

CUSTOMERS = 20


def purchase(order_id: int, user_id: int, book_id: int) -> events_pb2.PurchaseCompleted:
    # One line per order, of a book of the catalog (the worker refuses
    # others): an order's lines in the ledger count how often it was applied.
    return events_pb2.PurchaseCompleted(
        order_id=order_id,
        user_id=user_id,
        lines=[
            events_pb2.PurchaseLine(
                book_id=book_id,
                title=f"Book {book_id}",
                category=book_category(0),
                quantity=1,
                unit_price="10.00",
                line_total="10.00",
            )
        ],
        subtotal="10.00",
        discount="0.00",
        total="10.00",
        currency="USD",
    )


class Commands:
    def __init__(self) -> None:
        self.users: list[int] = []
        self.books: list[int] = []
        self.rng = random.Random(3)

    def setup(self) -> dict[str, Any]:
        call_command("migrate", verbosity=0, interactive=False)
        call_command("load_catalog", verbosity=0)
        # The catalog's own events have no consumer in the bench's namespace.
        OutboxMessage.objects.all().delete()
        Book.objects.update(stock=10_000_000)
        for n in range(CUSTOMERS):
            User.objects.get_or_create(
                username=f"buyer{n}", defaults={"email": f"buyer{n}@example.com"}
            )
        self.users = list(User.objects.values_list("pk", flat=True))
        self.books = list(Book.objects.values_list("pk", flat=True))
        return {"books": len(self.books)}

    def attach(self) -> dict[str, Any]:
        """The customers and books setup made (another driver ran it)."""
        self.users = list(
            User.objects.filter(username__startswith="buyer").values_list("pk", flat=True)
        )
        self.books = list(Book.objects.values_list("pk", flat=True))
        return {"books": len(self.books)}

    def _payloads(self, n: int, first_order: int) -> list[events_pb2.PurchaseCompleted]:
        return [
            purchase(
                first_order + i, self.users[i % len(self.users)], self.books[i % len(self.books)]
            )
            for i in range(n)
        ]

    def insert(self, n: int, first_order: int) -> dict[str, Any]:
        rows = []
        for payload in self._payloads(n, first_order):
            envelope = wrap(payload, correlation_id="bench", producer="bench")
            rows.append(
                OutboxMessage(
                    event_id=envelope.event_id,
                    event_type=envelope.event_type,
                    envelope=envelope.SerializeToString(),
                    correlation_id=envelope.correlation_id,
                )
            )
        # Inbox rows past this id are newer than the burst (progress() counts them).
        floor = InboxEvent.objects.aggregate(last=Max("id"))["last"] or 0
        with transaction.atomic():
            OutboxMessage.objects.bulk_create(rows)
        return {
            "committed": time.time(),
            "event_ids": [str(r.event_id) for r in rows],
            "inbox_floor": floor,
        }

    def progress(self, inbox_floor: int) -> dict[str, Any]:
        """Consumers' commits since the burst: a cheap count to poll, so the
        harness takes little of the CPU the worker is measured on."""
        rows = InboxEvent.objects.filter(id__gt=inbox_floor, consumer__in=PURCHASE_CONSUMERS)
        return {"applied": rows.count()}

    def envelopes(self, n: int, first_order: int) -> dict[str, Any]:
        return {
            "envelopes": [
                wrap(p, correlation_id="bench", producer="bench").SerializeToString().hex()
                for p in self._payloads(n, first_order)
            ]
        }

    def peer_burst(self, n: int, first_order: int) -> dict[str, Any]:
        """The same N purchases, each's tasks sent from on_commit of one transaction."""
        committed: list[float] = []
        with transaction.atomic():
            # Registered first, so it runs first: the commit's time, before any dispatch.
            transaction.on_commit(lambda: committed.append(time.time()))
            for payload in self._payloads(n, first_order):
                dispatch_on_commit(payload=payload, correlation_id="bench")
        return {"committed": committed[0], "dispatched": time.time()}

    def ledger(self, orders: list[int]) -> dict[str, Any]:
        """Per order: its lines, and the sales ledger's lines for it (0: never applied)."""

        def per_order(rows: Any) -> dict[str, int]:
            return {str(o): c for o, c in rows.values_list("order_id").annotate(c=Count("id"))}

        return {
            "order_lines": per_order(OrderLine.objects.filter(order_id__in=orders)),
            "ledger_lines": per_order(SaleLine.objects.filter(order_id__in=orders)),
        }

    def inbox_consumers(self, correlations: list[str]) -> dict[str, int]:
        """Per checkout (correlation id): how many consumers applied its purchase."""
        events = dict(
            OutboxMessage.objects.filter(
                correlation_id__in=correlations, event_type=PURCHASE_COMPLETED
            ).values_list("event_id", "correlation_id")
        )
        rows = (
            InboxEvent.objects.filter(event_id__in=events, consumer__in=PURCHASE_CONSUMERS)
            .values("event_id")
            .annotate(consumers=Count("id"))
        )
        return {events[r["event_id"]]: r["consumers"] for r in rows}

    def applied(self, event_ids: list[str], first_order: int, n: int) -> dict[str, Any]:
        """Per event: when its last consumer committed; and what was lost or doubled."""
        rows = (
            InboxEvent.objects.filter(event_id__in=event_ids, consumer__in=PURCHASE_CONSUMERS)
            .values("event_id")
            .annotate(consumers=Count("id"), last=Max("applied_at"))
        )
        done = {str(r["event_id"]): r for r in rows}
        complete = [r for r in done.values() if r["consumers"] == len(PURCHASE_CONSUMERS)]
        lines = dict(
            SaleLine.objects.filter(order_id__gte=first_order, order_id__lt=first_order + n)
            .values_list("order_id")
            .annotate(lines=Count("id"))
        )
        sent = OutboxMessage.objects.filter(event_id__in=event_ids).aggregate(
            last=Max("sent_at"), pending=Count("id", filter=Q(sent_at__isnull=True))
        )
        return {
            "relayed_at": (
                sent["last"].timestamp() if sent["last"] and not sent["pending"] else None
            ),
            "complete": len(complete),
            "applied_at": [r["last"].timestamp() for r in complete],
            # An event whose ledger effect is missing or counted twice.
            "ledger_missing": sum(1 for o in range(first_order, first_order + n) if o not in lines),
            "ledger_twice": sum(1 for count in lines.values() if count > 1),
            "inbox_twice": sum(1 for r in done.values() if r["consumers"] > 3),
        }

    def checkout(self, n: int, outbox: bool) -> dict[str, Any]:
        """``n`` checkouts of one or two books; without the outbox its call is a no-op.

        With it, each checkout's time in outbox_record() and, of that, in its
        row's INSERT alone: the database's round trip, the floor of the outbox's
        cost that no change to the code around it can remove."""
        books = list(Book.objects.filter(active=True).values_list("pk", flat=True))
        in_outbox: list[float] = []
        in_insert: list[float] = []
        insert = outbox_services._insert

        def timed(spent: list[float], call: Any) -> Any:
            def timed_call(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return call(*args, **kwargs)
                finally:
                    spent[-1] += time.perf_counter() - started

            return timed_call

        replacement = timed(in_outbox, outbox_record) if outbox else (lambda **kwargs: None)
        user_objects = list(User.objects.filter(pk__in=self.users))
        latencies = []
        with (
            mock.patch.object(order_services, "outbox_record", replacement),
            mock.patch.object(outbox_services, "_insert", timed(in_insert, insert)),
        ):
            started = time.perf_counter()
            for i in range(n):
                items = {b: 1 for b in self.rng.sample(books, self.rng.randint(1, 2))}
                user = user_objects[i % len(user_objects)]
                in_outbox.append(0.0)
                in_insert.append(0.0)
                t0 = time.perf_counter()
                order_services.order_checkout(
                    user=user, items=items, correlation_id=uuid.uuid4().hex
                )
                latencies.append(time.perf_counter() - t0)
            elapsed = time.perf_counter() - started
        return {
            "count": n,
            "seconds": elapsed,
            "latencies": latencies,
            # Per checkout: the time spent recording its events in the outbox,
            # and of that, in their rows' INSERTs.
            "in_outbox": in_outbox if outbox else [],
            "in_insert": in_insert if outbox else [],
        }

    def handle(self, command: dict[str, Any]) -> dict[str, Any]:
        name = command.pop("cmd")
        return getattr(self, name)(**command)


if __name__ == "__main__":
    serve_commands(Commands().handle)
