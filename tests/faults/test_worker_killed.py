"""A Celery worker SIGKILLed mid-burst, at the worst moment, then restarted.

The worst moment for a consumer is after its effects committed and before
the broker got the ack: the broker then delivers those events again. The
worker reaches the broker through a proxy that holds back what the worker
sends (its acks) while the events keep arriving, so when it is killed every
event it applied since is still unacknowledged. The restarted worker gets
them all again and must recognise each one as a duplicate.
"""

from __future__ import annotations

import time

import pytest

from marketplace_site.inbox.models import InboxEvent
from tests.events.broker import wait_until
from tests.faults.effects import assert_applied_exactly_once, wait_until_every_consumer_applied
from tests.faults.proxy import BrokerProxy
from tests.processes import celery_worker, child_env, manage

pytestmark = pytest.mark.django_db(transaction=True)


def applied_so_far() -> int:
    return InboxEvent.objects.count()


def wait_until_settled(quiet: float = 1.0, timeout: float = 20) -> int:
    """The inbox count once it stopped changing for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = applied_so_far(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = applied_so_far()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    raise AssertionError(f"the worker never stopped applying events ({last} so far)")


def test_a_worker_killed_with_applied_but_unacked_events_applies_each_event_once(
    topology, shop, burst, processes, tmp_path
):
    mail = tmp_path / "mail"
    env = child_env(
        RELAY_POLL_INTERVAL="0.02",
        DJANGO_EMAIL_BACKEND="file",
        DJANGO_EMAIL_FILE_PATH=str(mail),
    )
    with BrokerProxy() as proxy:
        processes(manage("run_relay", env=env, name="relay"))
        first = processes(celery_worker({**env, "AMQP_URL": proxy.url}, name="worker-1"))
        first.wait_for_output(" ready.", timeout=60)

        checkouts = burst(shop.checkout)
        wait_until(lambda: applied_so_far() >= 8, what="the stream to start")

        # From here on the worker's acks stay in the proxy; the events keep coming
        # until the broker's prefetch window is full, and the worker applies them.
        proxy.hold()
        held_from = applied_so_far()
        applied_unacked = wait_until_settled() - held_from
        assert applied_unacked > 0, "nothing was applied while the acks were held"
        assert checkouts.running, "the burst ended before the kill: make it longer"

        first.kill()
        proxy.cut()
    assert first.proc.returncode == -9

    # Checkouts go on with no worker at all, then a new one starts.
    after_kill = checkouts.done
    checkouts.wait_for(after_kill + 10)
    second = processes(celery_worker(env, name="worker-2"))
    second.wait_for_output(" ready.", timeout=60)
    checkouts.wait_for(checkouts.done + 10)
    total = checkouts.stop()

    wait_until_every_consumer_applied(timeout=60)
    wait_until(
        lambda: second.text().count("result=duplicate") >= applied_unacked,
        what=f"{applied_unacked} redelivered events recognised as duplicates",
    )
    assert_applied_exactly_once(topology=topology, mail=mail)
    assert total >= 20
    assert "result=applied" in first.text()
    assert "result=applied" in second.text()
