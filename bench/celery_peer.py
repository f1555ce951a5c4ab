"""The events hop's conventional peer: the same four handlers as ordinary
Celery tasks, dispatched from the checkout with
``transaction.on_commit(lambda: task.delay(...))``: no outbox, no relay, no
inbox, Celery's defaults (prefork pool, early acks, prefetch x4, JSON).

A baseline, not product code: it shows what the outbox, the relay, the
inbox and the batching cost against what a tutorial-style setup does, and
what that setup loses when the site dies between its commit and its
dispatch (the kill test, bench/kill_site.py).

celery -A bench.celery_peer worker --pool=prefork --concurrency=N
  (DJANGO_SETTINGS_MODULE=bench.site_settings, DATABASE_URL, EVENTS_NAMESPACE,
  BENCH_PEER_LOG: each task that committed adds "event_id consumer time order_id")
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import django
from celery import Celery, Task
from django.conf import settings
from django.db import transaction
from google.protobuf.message import Message

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.site_settings")
django.setup()

from bench.hop_events import peer_control_exchange, peer_queue  # noqa: E402
from events.contracts import (  # noqa: E402
    PROMOTION_APPLIED,
    PURCHASE_COMPLETED,
    Event,
    unwrap,
    wrap,
)
from marketplace_site.campaigns.services import sales_record  # noqa: E402
from marketplace_site.notifications.services import order_confirmation_send  # noqa: E402
from marketplace_site.promotions.services import promotion_stats_record  # noqa: E402
from marketplace_site.vouchers.services import voucher_grant_if_due  # noqa: E402

Handler = Callable[[Sequence[Event]], None]


NAMESPACE = settings.EVENTS_NAMESPACE
app = Celery("bench-peer")
app.conf.update(
    broker_url=settings.CELERY_BROKER_URL,
    task_default_queue=peer_queue(NAMESPACE),
    # Its own remote-control and event exchanges: other workers share the vhost.
    control_exchange=peer_control_exchange(NAMESPACE),
    event_exchange=f"{NAMESPACE}.peer-events",
    task_ignore_result=True,
    worker_hijack_root_logger=False,
)

# Celery's default worker logs at WARNING: no line per task. The harness runs
# it at INFO only to see it start ("ready.").
for _chatty in ("celery.app.trace", "celery.worker.strategy"):
    logging.getLogger(_chatty).setLevel(logging.WARNING)

_log = None


def _note(event: Event, consumer: str) -> None:
    """The harness's witness that a task's effects committed (a line, appended)."""
    global _log
    if _log is None:
        _log = open(os.environ["BENCH_PEER_LOG"], "a", buffering=1)  # noqa: SIM115
    order_id = getattr(event.payload, "order_id", 0)
    _log.write(f"{event.event_id} {consumer} {time.time()} {order_id}\n")


def _apply(handler: Handler, consumer: str, envelope: str) -> None:
    event = unwrap(bytes.fromhex(envelope))
    with transaction.atomic():
        handler([event])
    _note(event, consumer)


@app.task(name="peer.promotion_stats")
def promotion_stats(envelope: str) -> None:
    _apply(promotion_stats_record, "promotions", envelope)


@app.task(name="peer.sales_record")
def record_sale(envelope: str) -> None:
    _apply(sales_record, "campaigns", envelope)


@app.task(name="peer.order_confirmation")
def order_confirmation(envelope: str) -> None:
    _apply(order_confirmation_send, "emails", envelope)


@app.task(name="peer.voucher_grant")
def voucher_grant(envelope: str) -> None:
    _apply(voucher_grant_if_due, "vouchers", envelope)


# Which tasks an event type's checkout dispatches: as events.routes, one task per handler.
TASKS: dict[str, list[Task[Any, Any]]] = {
    PURCHASE_COMPLETED: [record_sale, order_confirmation, voucher_grant],
    PROMOTION_APPLIED: [promotion_stats],
}
PURCHASE_TASKS = len(TASKS[PURCHASE_COMPLETED])


def dispatch_on_commit(*, payload: Message, correlation_id: str = "") -> None:
    """In place of outbox_record(): the tasks are sent once the checkout commits."""
    envelope = wrap(payload, correlation_id=correlation_id, producer="peer")
    body = envelope.SerializeToString().hex()
    for task in TASKS[envelope.event_type]:
        transaction.on_commit(partial(task.delay, body))
