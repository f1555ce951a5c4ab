from __future__ import annotations

import uuid

import pytest

from events.topology import Topology
from tests.events.broker import delete_topology


@pytest.fixture
def topology(settings, monkeypatch) -> Topology:
    """A namespace of queues and exchanges of this test's own, removed afterwards."""
    namespace = f"test-{uuid.uuid4().hex[:10]}"
    settings.EVENTS_NAMESPACE = namespace
    settings.EVENTS_DELIVERY_LIMIT = 3
    monkeypatch.setenv("EVENTS_NAMESPACE", namespace)
    monkeypatch.setenv("EVENTS_DELIVERY_LIMIT", "3")
    topology = Topology(namespace=namespace, delivery_limit=3)
    yield topology
    # Recommender replicas the tests name declare queues of their own too;
    # deleting a queue that is not there is a no-op.
    delete_topology(topology, instances=("new-replica", "old-replica", "e2e"))
