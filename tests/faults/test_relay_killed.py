"""The relay killed after the broker confirmed a batch and before it marked the
rows sent: on restart it publishes the whole batch again, and a real worker
applies every event once all the same."""

from __future__ import annotations

import pytest

from marketplace_site.outbox.models import OutboxMessage
from tests.events.broker import wait_until
from tests.faults.effects import (
    assert_applied_exactly_once,
    expected_counts,
    wait_until_every_consumer_applied,
)
from tests.processes import celery_worker, child_env, crashing_relay, manage

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_batch_published_twice_by_a_killed_relay_is_applied_once(
    topology, shop, processes, tmp_path
):
    mail = tmp_path / "mail"
    env = child_env(
        RELAY_POLL_INTERVAL="0.02",
        DJANGO_EMAIL_BACKEND="file",
        DJANGO_EMAIL_FILE_PATH=str(mail),
    )
    for n in range(12):
        shop.checkout(n)
    twice = expected_counts()
    assert twice == {
        "worker.promotions": 12,
        "worker.campaigns": 12,
        "worker.emails": 12,
        "worker.vouchers": 12,
    }
    # The worker first: its queues must exist for the relay's mandatory publishes.
    worker = processes(celery_worker(env))
    worker.wait_for_output(" ready.", timeout=60)

    # Dies (exit 137, no cleanup) right after the broker confirmed every row.
    crashing = processes(crashing_relay(env, name="relay-1"))
    assert crashing.proc.wait(30) == 137, crashing.text()
    assert not OutboxMessage.objects.filter(state=OutboxMessage.State.SENT).exists()

    processes(manage("run_relay", env=env, name="relay-2"))
    wait_until(
        lambda: not OutboxMessage.objects.filter(state=OutboxMessage.State.PENDING).exists(),
        what="the restarted relay to mark every row sent",
    )
    # The stream goes on as usual afterwards.
    for n in range(12, 16):
        shop.checkout(n)
    wait_until_every_consumer_applied(timeout=60)
    duplicates = sum(twice.values())
    wait_until(
        lambda: worker.text().count("result=duplicate") >= duplicates,
        what=f"{duplicates} second copies recognised as duplicates",
    )
    assert_applied_exactly_once(topology=topology, mail=mail)
    # Every event of the crashed batch came twice to each of its consumers: no more.
    assert worker.text().count("result=duplicate") == duplicates
    assert worker.text().count("result=applied") == sum(expected_counts().values())
