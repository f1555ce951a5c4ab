"""Routes are the bindings: one table says which consumer handles which event
types, the topology is derived from it, and every handler it names imports."""

from __future__ import annotations

import pytest

from events import routes
from events.routes import ROUTES, MissingHandler, handlers
from events.topology import CONSUMERS, Topology


@pytest.mark.parametrize("consumer", sorted(CONSUMERS))
def test_every_bound_event_type_has_a_handler_that_imports(consumer):
    resolved = handlers(consumer)
    assert set(resolved) == set(CONSUMERS[consumer])
    assert all(callable(handler) for handler in resolved.values())


def test_queues_and_the_history_are_bound_to_the_routes_event_types():
    topology = Topology(namespace="routes-test")
    for consumer, table in ROUTES.items():
        assert set(topology.queue(consumer).routing_keys) == set(table)
    assert set(topology.history.routing_keys) == set(ROUTES["recommender"])


def test_a_handler_that_cannot_be_imported_stops_the_consumer_naming_its_route(monkeypatch):
    monkeypatch.setitem(routes.ROUTES, "worker.promotions", {"x.y": "nowhere.at_all:handler"})
    with pytest.raises(MissingHandler, match=r"worker\.promotions handles x\.y with nowhere"):
        handlers("worker.promotions")
