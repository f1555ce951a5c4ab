"""Connecting to the broker's nodes, as every aio-pika client does (events.amqp)."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest

from events.amqp import BrokerNodes
from tests.events.broker import AMQP_URL
from tests.processes import free_port


def test_a_node_that_is_down_is_passed_over_for_the_next(caplog: pytest.LogCaptureFixture):
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    nodes = BrokerNodes(f"{dead};{AMQP_URL}")

    async def connect() -> str:
        connection, node = await nodes.connect(connect_timeout=5)
        await connection.close()
        return node

    with caplog.at_level(logging.DEBUG):
        node = asyncio.run(connect())

    assert node.endswith(AMQP_URL.rsplit("@", 1)[1])
    # The dead node is a DEBUG line of ours, not an ERROR of aiormq's: a
    # client that goes on (or reports the failure itself) is not an error.
    assert "did not answer" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_when_no_node_answers_the_caller_gets_the_error_and_the_log_no_error_line(
    caplog: pytest.LogCaptureFixture,
):
    with socket.socket() as held:  # a port nobody listens on
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        nodes = BrokerNodes(f"amqp://guest:guest@127.0.0.1:{port}/")
        with caplog.at_level(logging.DEBUG), pytest.raises(ConnectionError):
            asyncio.run(nodes.connect(connect_timeout=5))

    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
