"""The kill test's site process: checkouts, the last one held after its
commit until the harness SIGKILLs it.

python -m bench.kill_site ours|peer TAG WARM
  (DJANGO_SETTINGS_MODULE=bench.site_settings, DATABASE_URL, EVENTS_NAMESPACE)

``ours`` records the checkout's events in the outbox (order_checkout as it
is); ``peer`` sends them as the conventional peer does, from
``transaction.on_commit`` (bench.celery_peer). WARM checkouts go through
whole ("done ORDER CORRELATION"); the next one's commit is followed by a
hook, registered before the checkout's own callbacks so it runs first, that
prints "committed ORDER CORRELATION" and waits: the window between the
commit and the dispatch, held open so that the kill lands in it every time
(a crash, an OOM kill or a deploy's SIGKILL can land there at random).
"""

from __future__ import annotations

import sys
import time
from unittest import mock

import django

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.db import transaction  # noqa: E402

from bench.celery_peer import dispatch_on_commit  # noqa: E402
from marketplace_site.catalog.models import Book  # noqa: E402
from marketplace_site.orders import services as order_services  # noqa: E402
from marketplace_site.outbox.services import outbox_record  # noqa: E402

# Long enough for any harness to notice the line and kill; never reached.
WINDOW_SECONDS = 120


def main(side: str, tag: str, warm: int) -> None:
    record = {"ours": outbox_record, "peer": dispatch_on_commit}[side]
    users = list(User.objects.filter(username__startswith="buyer").order_by("pk"))
    books = list(Book.objects.filter(active=True).order_by("pk").values_list("pk", flat=True))
    with mock.patch.object(order_services, "outbox_record", record):
        for i in range(warm + 1):
            correlation = f"{tag}-{i}"
            placed: list[int] = []

            def window(placed: list[int] = placed, correlation: str = correlation) -> None:
                print(f"committed {placed[0]} {correlation}", flush=True)
                time.sleep(WINDOW_SECONDS)

            with transaction.atomic():
                if i == warm:
                    transaction.on_commit(window)
                order = order_services.order_checkout(
                    user=users[i % len(users)],
                    items={books[(7 * i) % len(books)]: 1},
                    correlation_id=correlation,
                )
                placed.append(order.pk)
            print(f"done {order.pk} {correlation}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
