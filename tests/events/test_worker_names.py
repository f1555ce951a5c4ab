"""Two shops (two namespaces) and two workers of one shop share one broker;
a worker starts with events waiting for it.

The workers are started with the Procfile's own command line, as `make run`
starts them (gossip, mingle and remote control on), on this one host.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Iterator

import pytest

from bookstore.events.v1 import events_pb2
from events.contracts import PROMOTION_APPLIED
from events.topology import Topology
from marketplace_site.promotions.models import PromotionStats
from tests.events.broker import bindings, consumed_by, consumer_count, delete_topology, wait_until
from tests.events.declare import declare
from tests.events.publish import envelope_bytes, publish
from tests.processes import Process, child_env, free_port, procfile_process

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def other_shop() -> Iterator[Topology]:
    """A second namespace on the same broker, removed afterwards."""
    topology = Topology(namespace=f"test-{uuid.uuid4().hex[:10]}", delivery_limit=3)
    yield topology
    delete_topology(topology)


@pytest.fixture
def start_worker():
    started: list[Process] = []

    def start_worker(topology: Topology, name: str, *, wait: bool = True, **extra: str) -> Process:
        env = child_env(
            EVENTS_NAMESPACE=topology.namespace,
            EVENTS_DELIVERY_LIMIT=str(topology.delivery_limit),
            WORKER_METRICS_PORT=str(free_port()),
            **extra,
        )
        process = procfile_process("worker", env, name=name)
        started.append(process)
        if wait:
            process.wait_for_output(" ready.", timeout=60)
        return process

    yield start_worker
    for process in started:
        process.stop()


_orders = itertools.count(1)


def applied(promotion_id: int) -> tuple[str, bytes]:
    """A redemption of an order of its own: one order's counts once (the inbox)."""
    event_id = str(uuid.uuid4())
    payload = events_pb2.PromotionApplied(
        promotion_id=promotion_id,
        order_id=next(_orders),
        user_id=1,
        discount="1.00",
        currency="USD",
    )
    return event_id, envelope_bytes(payload, event_id=event_id)


def logged(workers: list[Process], events: list[tuple[str, bytes]]) -> bool:
    seen = "".join(worker.text() for worker in workers)
    return all(f"id={event_id} result=applied" in seen for event_id, _ in events)


def redemptions(promotion) -> int:
    row = PromotionStats.objects.filter(promotion=promotion).first()
    return row.redemptions if row else 0


def test_two_shops_and_two_workers_of_one_shop_run_side_by_side_on_one_broker(
    topology, other_shop, start_worker, make_promotion
):
    ours = [start_worker(topology, "worker-a1"), start_worker(topology, "worker-a2")]
    theirs = start_worker(other_shop, "worker-b")
    workers = [*ours, theirs]
    for worker in workers:
        # Each started, and none was stopped by another taking its names.
        assert worker.proc.poll() is None, worker.text()[-3000:]
        assert "RESOURCE_LOCKED" not in worker.text()

    our_promotion, their_promotion = make_promotion(), make_promotion(name="Theirs")
    our_events = [applied(our_promotion.pk) for _ in range(6)]
    their_events = [applied(their_promotion.pk) for _ in range(4)]
    publish(topology, PROMOTION_APPLIED, *(body for _, body in our_events))
    publish(other_shop, PROMOTION_APPLIED, *(body for _, body in their_events))
    wait_until(lambda: redemptions(our_promotion) == 6, what="our events applied")
    wait_until(lambda: redemptions(their_promotion) == 4, what="their events applied")

    # Each shop's events reached its own workers only.
    wait_until(lambda: logged(ours, our_events), what="our workers' log of our events")
    wait_until(lambda: logged([theirs], their_events), what="their worker's log of theirs")
    assert not any(f"id={event_id} " in theirs.text() for event_id, _ in our_events)
    ours_seen = "".join(worker.text() for worker in ours)
    assert not any(f"id={event_id} " in ours_seen for event_id, _ in their_events)
    # Our two workers compete on our queue.
    assert consumer_count(topology.queue("worker.promotions").name) == 2
    assert consumer_count(other_shop.queue("worker.promotions").name) == 1

    # Nothing a worker consumes from, or is bound to, belongs to the other shop
    # or to no shop: every name carries the worker's own namespace.
    for worker, mine, other in (
        (ours[0], topology, other_shop),
        (ours[1], topology, other_shop),
        (theirs, other_shop, topology),
    ):
        queues = consumed_by(worker.proc.pid)
        assert mine.queue("worker.promotions").name in queues
        bound = bindings()
        exchanges = {exchange for queue in queues for exchange in bound.get(queue, ())} - {""}
        for name in queues | exchanges:
            assert mine.namespace in name, (name, worker.name)
            assert other.namespace not in name, (name, worker.name)
    for worker in workers:
        assert worker.proc.poll() is None, worker.text()[-3000:]


def test_a_worker_takes_no_event_before_it_has_met_its_neighbours(
    topology, start_worker, make_promotion
):
    """Celery's mingle (the hello to the other workers, at start) reads the
    worker's connection until it has been quiet for a second. Events consumed
    from that connection by then would keep it from ever being quiet while
    they flow: the worker out of its event loop, no ping answered (the
    deployments' health check), no task run, each batch applied only once
    full. In the swarm's rolling update a new worker was ready 54 s after it
    started.

    Celery sorts its steps through sets, so their order changes with the hash
    seed: under seed 7 the events' step, asking only for the connection,
    started before mingle."""
    declare(topology, topology.queue("worker.promotions"))
    promotion = make_promotion()
    backlog = [applied(promotion.pk) for _ in range(300)]
    publish(topology, PROMOTION_APPLIED, *(body for _, body in backlog))

    worker = start_worker(topology, "worker-late", wait=False, PYTHONHASHSEED="7")
    wait_until(lambda: redemptions(promotion) == 300, what="the backlog applied", timeout=60)
    text = worker.text()
    met = re.search(r"mingle: (all alone|sync complete|sync with)", text)
    consuming = text.find("events: consuming")
    first_applied = text.find("result=applied")
    assert met is not None, text[-3000:]
    assert consuming != -1, text[-3000:]
    assert met.start() < consuming < first_applied, text[: first_applied + 500]
