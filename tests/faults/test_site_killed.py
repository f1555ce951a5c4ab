"""The site process SIGKILLed right after a checkout's response: the events are
still delivered, once.

A site that published from on_commit would lose them here: the process dies
between its commit and its publish. With the outbox, the order and its events
committed together, and a relay started afterwards delivers them.
"""

from __future__ import annotations

import re
import sys
import urllib.request

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from events.topology import WORKER_CONSUMERS
from marketplace_site.inbox.models import InboxEvent
from marketplace_site.orders.models import Order
from marketplace_site.outbox.models import OutboxMessage
from tests.events.broker import wait_until
from tests.faults.conftest import TOTAL
from tests.faults.effects import (
    assert_applied_exactly_once,
    expected_counts,
    wait_until_every_consumer_applied,
)
from tests.processes import MANAGE, Process, celery_worker, child_env, free_port, manage
from tests.shopper import Shopper

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct horse battery"  # the make_user fixture's


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_a_checkout_answered_just_before_the_site_died_is_delivered_once(
    topology, shop, processes, tmp_path
):
    mail = tmp_path / "mail"
    env = child_env(DJANGO_EMAIL_BACKEND="file", DJANGO_EMAIL_FILE_PATH=str(mail))
    # The worker first, so its queues exist; nothing publishes until the relay starts.
    worker = processes(celery_worker(env))
    port = free_port()
    site = processes(
        Process(
            [sys.executable, MANAGE, "runserver", f"127.0.0.1:{port}", "--noreload"], env, "site"
        )
    )
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: answers(f"{base}/healthz"), timeout=60, what="the site to answer")
    worker.wait_for_output(" ready.", timeout=60)

    alice = shop.customers[0]
    # The site's own hasher (the tests hash with MD5 for speed, which it does not accept).
    alice.password = PBKDF2PasswordHasher().encode(PASSWORD, "fault-test", iterations=1000)
    alice.save(update_fields=["password"])
    shopper = Shopper(base)
    shopper.log_in(alice.username, PASSWORD)
    for book in shop.books:
        added = shopper.request(f"/cart/add/{book.pk}/", {"quantity": "1"})
        assert (added.status, added.headers["Location"]) == (302, "/cart/")
    cart = shopper.request("/cart/").read().decode()
    shown = re.search(r'name="expected_total" value="([^"]+)"', cart).group(1)
    assert shown == str(TOTAL)

    # The checkout in a trace of the test's choosing (W3C traceparent).
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traced = {"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    response = shopper.request("/checkout/", {"expected_total": shown}, headers=traced)
    site.kill()

    assert site.proc.returncode == -9
    assert response.status == 302
    order = Order.objects.get()
    assert response.headers["Location"] == f"/orders/{order.pk}/"
    assert (order.user, order.total) == (alice, TOTAL)
    # The trace's id is the order's correlation id, and its events'.
    assert order.correlation_id == trace_id
    rows = OutboxMessage.objects.filter(correlation_id=trace_id)
    assert sorted(rows.values_list("event_type", "state")) == [
        ("orders.purchase_completed", "pending"),
        ("promotions.promotion_applied", "pending"),
    ]

    processes(manage("run_relay", env=env, name="relay"))
    wait_until_every_consumer_applied(timeout=60)
    assert expected_counts() == dict.fromkeys(WORKER_CONSUMERS, 1)
    assert_applied_exactly_once(topology=topology, mail=mail)
    assert set(InboxEvent.objects.values_list("correlation_id", flat=True)) == {trace_id}
    assert trace_id in worker.text()  # the worker's log lines about them
