"""A local 3-node RabbitMQ cluster for the tests that lose nodes (scripts/rabbitmq_cluster.py).

Started once per session, beside the machine's broker, which these tests never
stop; the fixture ``on_cluster`` points a test's clients and its own look
into the broker at the cluster, and leaves every node running afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scripts.rabbitmq_cluster import LocalCluster


@pytest.fixture(scope="session")
def cluster(tmp_path_factory) -> Iterator[LocalCluster]:
    nodes = LocalCluster(tmp_path_factory.mktemp("rabbitmq-cluster")).up()
    yield nodes
    nodes.down()


@pytest.fixture
def on_cluster(cluster, topology, settings, monkeypatch) -> Iterator[LocalCluster]:
    """This test's clients, and its own look into the broker, use the cluster."""
    cluster.make_whole()  # whatever a failed test left down or frozen
    monkeypatch.setenv("AMQP_URL", cluster.amqp_url)
    settings.AMQP_URL = cluster.amqp_url
    yield cluster
    cluster.make_whole()  # for the next test
