"""A RabbitMQ node lost from a 3-node cluster while checkouts go on.

Three real nodes (scripts/rabbitmq_cluster.py) beside the machine's broker;
the relay, a Celery worker and a recommender each given every node. The node
leading the queues is SIGKILLed and restarted, or frozen for 20 s; the node
a worker is connected to dies under it. Each time every recorded event must
reach each of its consumers exactly once (the worker's four and the
recommender's), nothing is parked, and how long publishing and consuming
paused is written to test-artifacts/cluster-pauses.json.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import sys
import time
from collections import Counter
from contextlib import closing
from datetime import datetime
from pathlib import Path

import pytest
from kombu import Connection

from events.topology import CONSUMERS, Topology
from marketplace_site.inbox.models import InboxEvent
from marketplace_site.orders.models import OrderLine
from marketplace_site.outbox.models import OutboxMessage
from scripts.rabbitmq_cluster import LocalCluster, Node
from tests.events.broker import amqp_channel, message_count, wait_until
from tests.faults.effects import assert_applied_exactly_once, wait_until_every_consumer_applied
from tests.processes import REPO_ROOT, Process, celery_worker, child_env, manage

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]

INSTANCE = "cluster"
ARTIFACT = REPO_ROOT / "test-artifacts" / "cluster-pauses.json"


def starting_with(cluster: LocalCluster, first: Node) -> str:
    """AMQP_URL with ``first`` first: where a client connects before any failover."""
    others = [node for node in cluster.nodes if node is not first]
    return ";".join(node.url for node in (first, *others))


def declare_worker_queues(topology: Topology, url: str) -> None:
    """Declared before anything starts, so the test knows their leader from the outset."""
    with Connection(url, connect_timeout=10) as conn, amqp_channel(conn) as channel:
        for spec in topology.worker_queues():
            channel.queue_declare(
                spec.name, durable=True, auto_delete=False, arguments=dict(spec.arguments)
            )


def recommender(env: dict[str, str], db: Path) -> Process:
    return Process(
        [sys.executable, "-m", "recommender"],
        {
            **env,
            "RECOMMENDER_LISTEN": "127.0.0.1:0",
            "RECOMMENDER_DB": str(db),
            "RECOMMENDER_INSTANCE": INSTANCE,
            "RECOMMENDER_GRACE_SECONDS": "0",
        },
        "recommender",
    )


def longest_gap(times: list[datetime]) -> float:
    times = sorted(times)
    return max(((b - a).total_seconds() for a, b in itertools.pairwise(times)), default=0.0)


def record_pauses(case: str, pauses: dict[str, float]) -> None:
    ARTIFACT.parent.mkdir(exist_ok=True)
    found = json.loads(ARTIFACT.read_text()) if ARTIFACT.exists() else {}
    found[case] = {name: round(seconds, 2) for name, seconds in pauses.items()}
    ARTIFACT.write_text(json.dumps(found, indent=2) + "\n")
    print(f"{case}: {found[case]}")


@pytest.mark.parametrize("fault", ["leader killed", "leader frozen 20s", "worker's node killed"])
def test_a_lost_node_loses_and_doubles_nothing(
    fault, on_cluster, topology, shop, burst, processes, tmp_path
):
    cluster = on_cluster
    declare_worker_queues(topology, cluster.amqp_url)
    leader = cluster.leader(topology.queue("worker.campaigns").name)
    others = [node for node in cluster.nodes if node is not leader]
    victim = others[0] if fault == "worker's node killed" else leader
    mail = tmp_path / "mail"
    env = child_env(
        RELAY_POLL_INTERVAL="0.02", DJANGO_EMAIL_BACKEND="file", DJANGO_EMAIL_FILE_PATH=str(mail)
    )
    # The worker starts on the victim's node in the last case, elsewhere
    # otherwise; the relay and the recommender start on the victim, so
    # publishing and the recommender's consuming fail over every time.
    worker_first = victim if fault == "worker's node killed" else others[-1]
    worker = processes(celery_worker({**env, "AMQP_URL": starting_with(cluster, worker_first)}))
    worker.wait_for_output(" ready.", timeout=60)
    store = tmp_path / "recommender.sqlite3"
    learner = processes(recommender({**env, "AMQP_URL": starting_with(cluster, victim)}, store))
    learner.wait_for_output("events: consuming", timeout=60)
    processes(manage("run_relay", env={**env, "AMQP_URL": starting_with(cluster, victim)}))

    checkouts = burst(shop.checkout, pause=0.05)
    wait_until(lambda: InboxEvent.objects.count() >= 20, timeout=60, what="the stream to start")
    lost_at = time.monotonic()
    if fault == "leader frozen 20s":
        cluster.freeze(victim)
        time.sleep(20)
        cluster.thaw(victim)
    else:
        cluster.kill(victim)
        time.sleep(10)  # checkouts go on with one node down
        cluster.start(victim)
        cluster.wait_until_running(victim)
    node_lost_for = time.monotonic() - lost_at
    checkouts.wait_for(checkouts.done + 20, timeout=60)
    placed = checkouts.stop()
    assert placed >= 40

    wait_until_every_consumer_applied(timeout=120)
    wait_until(
        lambda: not OutboxMessage.objects.filter(state="pending").exists(),
        what="every outbox row published",
    )
    assert_applied_exactly_once(topology=topology, mail=mail)

    # The recommender applied every book and purchase event once too.
    recommender_types = set(CONSUMERS["recommender"])
    recorded = {
        str(event_id)
        for event_id, event_type in OutboxMessage.objects.values_list("event_id", "event_type")
        if event_type in recommender_types
    }

    def learned(query: str) -> list[tuple]:
        with closing(sqlite3.connect(store)) as db:
            return db.execute(query).fetchall()

    wait_until(
        lambda: {row[0] for row in learned("SELECT event_id FROM inbox")} >= recorded,
        timeout=60,
        what="the recommender to learn every event",
    )
    assert {row[0] for row in learned("SELECT event_id FROM inbox")} == recorded
    # Its effects count each order line once, however often it was delivered.
    ordered = Counter(OrderLine.objects.values_list("order_id", "book_id", "quantity"))
    assert Counter(learned("SELECT order_id, book_id, quantity FROM purchases")) == ordered
    assert message_count(topology.recommender_queue(INSTANCE).dead_letter_queue) == 0
    assert learner.proc.poll() is None, "the recommender died"
    assert worker.proc.poll() is None, "the worker died"

    sent = list(OutboxMessage.objects.values_list("sent_at", flat=True))
    applied = {
        consumer: list(
            InboxEvent.objects.filter(consumer=consumer).values_list("applied_at", flat=True)
        )
        for consumer in ("worker.campaigns", "worker.promotions")
    }
    record_pauses(
        fault,
        {
            "node_lost_for": node_lost_for,
            "publishing_paused": longest_gap(sent),
            **{f"{c}_paused": longest_gap(times) for c, times in applied.items()},
        },
    )
